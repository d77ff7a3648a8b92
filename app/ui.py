"""The page, built in the order the user sees it: the header, then one tab per module of app/tabs/
(generate, compare, learn; each lays out and wires its own widgets), then what spans the tabs (page-load
defaults) and the server settings (queue, concurrency, allowed paths).

Named API endpoints: /generate and /compare (documented in app/README.md); every other event is private.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import gradio as gr

from app.config import AppConfig
from app.handlers import Handlers
from app.tabs import PRIVATE, compare, generate, learn

HEADER = """# PyramidalWan Studio
Text → video with a Wan2.1-style diffusion transformer made *pyramidal*: the noisiest steps run at low
spatio-temporal resolution, only the last ones at full size. Watch each stage appear at its own resolution,
compare schedules side by side, and see where the compute goes."""

CSS = """
.captioned .grid-wrap { min-height: 0 !important; height: auto !important; max-height: none !important; }
.captioned .thumbnail-item { aspect-ratio: auto !important; height: auto !important; }
.captioned .thumbnail-item img { height: auto !important; image-rendering: pixelated; }
.captioned .caption-label { position: static !important; white-space: normal !important;
  max-width: 100% !important; overflow: visible !important; text-align: left; margin: 4px 2px 0; }
footer { display: none !important; }
"""


@dataclass
class Studio:
    """The built page, its handlers and settings; `launch` starts serving it."""

    config: AppConfig
    handlers: Handlers
    demo: gr.Blocks

    def launch(
        self, host: str | None = None, port: int | None = None, block: bool = True, **kwargs
    ) -> Studio:
        """Serve with a bounded queue; the warm-up thread starts once the page is reachable."""
        self.demo.queue(max_size=self.config.queue_size, default_concurrency_limit=4)
        self.demo.launch(
            server_name=host,
            server_port=port,
            allowed_paths=[str(self.config.outputs_root)],
            max_file_size=self.config.max_upload,
            prevent_thread_lock=True,
            theme=gr.themes.Soft(primary_hue="indigo", secondary_hue="pink"),
            css=CSS,
            **kwargs,
        )
        if self.config.warm_up:
            threading.Thread(target=self.handlers.warm_up, name="warm-up", daemon=True).start()
        if block:
            self.demo.block_thread()
        return self

    @property
    def url(self) -> str:
        return self.demo.local_url

    def close(self) -> None:
        self.demo.close()


def build_studio(config: AppConfig | None = None) -> Studio:
    config = config or AppConfig.from_env()
    config.outputs_root.mkdir(parents=True, exist_ok=True)
    h = Handlers(config)
    h.store.sweep()  # what a killed server left: unfinished videos, empty request folders
    _register_zero_gpu()
    engine_events = {"concurrency_id": "engine", "concurrency_limit": config.workers}
    ttl = int(config.output_ttl_s)

    with gr.Blocks(title="PyramidalWan Studio", delete_cache=(ttl, ttl), analytics_enabled=False) as demo:
        gr.Markdown(HEADER)
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                gen = generate.build(h, engine_events)
            with gr.Tab("Compare", id="compare"):
                cmp = compare.build(h, engine_events)
            with gr.Tab("Learn", id="learn"):
                lrn = learn.build(h)

        # On page load (after the page is interactive): model lists and defaults, then the Learn views.
        typed = gen.settings[:-1]  # what the user may have typed while the page was loading
        load = demo.load(h.page_load, typed, [gen.model, *cmp.models, *gen.settings], **PRIVATE)
        load.then(h.wavelets, None, [gen.wavelet, lrn.wavelet], **PRIVATE)
        for draw in lrn.on_load:
            draw(load)

    return Studio(config=config, handlers=h, demo=demo)


def _register_zero_gpu() -> None:
    """On a ZeroGPU Space, `spaces.GPU` must wrap the generation function before the server starts, so the
    (slow) engine import happens here instead of in the background."""
    try:
        import spaces  # noqa: F401
    except ImportError:
        return
    import app.runs  # noqa: F401
