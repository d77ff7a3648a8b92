"""The page, built in the order the user sees it: Generate, Compare, Learn; then the events that wire the
widgets to the handlers (app/handlers.py) and the server settings (queue, concurrency, allowed paths).

Named API endpoints: /generate and /compare (documented in app/README.md); every other event is private.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial

import gradio as gr

from app.config import AppConfig
from app.handlers import (
    MAX_RUNS,
    QUICK_COMPARES,
    SCHEDULE_PRESETS,
    Handlers,
    frame_choices,
    size_choices,
)
from app.paper import PAPER_MODEL, PAPER_SCHEDULES, PAPER_SIZE
from app.prompts import EXAMPLES
from engine.flops import KNOWN_SIZES

HEADER = """# PyramidalWan Studio
Text → video with a Wan2.1-style diffusion transformer made *pyramidal*: the noisiest steps run at low
spatio-temporal resolution, only the last ones at full size. Watch each stage appear at its own resolution,
compare schedules side by side, and see where the compute goes."""

COMPARE_DEFAULTS = ["20-20-10", "0-0-50", "2-2-1", "0-0-1"]

CSS = """
.captioned .grid-wrap { min-height: 0 !important; height: auto !important; max-height: none !important; }
.captioned .thumbnail-item { aspect-ratio: auto !important; height: auto !important; }
.captioned .thumbnail-item img { height: auto !important; image-rendering: pixelated; }
.captioned .caption-label { position: static !important; white-space: normal !important;
  max-width: 100% !important; overflow: visible !important; text-align: left; margin: 4px 2px 0; }
footer { display: none !important; }
"""

PRIVATE = {"api_visibility": "private"}
# No precision or bounds on number inputs: gradio would round 1.5 to 2 and fail with a generic or empty
# message on "abc", NaN or Infinity from the API; the handlers check them and name the field instead.
CHECKED_BY_HANDLER = {"precision": None, "minimum": None, "maximum": None}


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
            # --- Generate ------------------------------------------------------------------------------
            with gr.Tab("Generate", id="generate"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=360):
                        prompt = gr.Textbox(
                            label="Prompt",
                            lines=2,
                            elem_id="prompt",
                            placeholder="a red circle moving left on a black background",
                        )
                        with gr.Row():
                            run_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                            surprise_btn = gr.Button("Surprise me", elem_id="surprise-btn")
                        gr.Examples(
                            EXAMPLES, inputs=[prompt], label="Examples (the procedural world's grammar)"
                        )
                        model = gr.Dropdown(
                            [], value=None, label="Model variant", allow_custom_value=True, elem_id="model"
                        )
                        model_info = gr.Markdown(elem_id="model-info")
                        schedule = gr.Textbox(
                            value="",
                            max_lines=1,
                            elem_id="schedule",
                            label="Schedule: steps per stage, low → high resolution",
                            info="type your own, e.g. 8-8-4 (0-0-N is the plain sampler), or pick a preset",
                        )
                        presets = gr.Radio(
                            SCHEDULE_PRESETS, value=None, show_label=False, container=False, elem_id="presets"
                        )
                        schedule_note = gr.Markdown(elem_id="schedule-note")
                        with gr.Row():
                            seed = gr.Number(
                                label="Seed", value=0, step=1, elem_id="seed", **CHECKED_BY_HANDLER
                            )
                            randomize = gr.Checkbox(
                                label="Randomise seed", value=True, info="untick to reuse the seed shown"
                            )
                        with gr.Accordion("Advanced options", open=False):
                            negative = gr.Textbox(
                                label="Negative prompt", placeholder="empty: the model's default"
                            )
                            guidance = gr.Number(
                                label="Guidance (1 = no classifier-free guidance, at most 30)",
                                value=None,
                                step=0.5,
                                **CHECKED_BY_HANDLER,
                            )
                            with gr.Row():
                                frames = gr.Dropdown(
                                    frame_choices(), value=None, label="Frames", allow_custom_value=True
                                )
                                height = gr.Dropdown(
                                    size_choices(), value=None, label="Height", allow_custom_value=True
                                )
                                width = gr.Dropdown(
                                    size_choices(), value=None, label="Width", allow_custom_value=True
                                )
                            wavelet = gr.Dropdown(
                                ["haar"],
                                value="haar",
                                label="Wavelet of the jump (R↓, R↑)",
                                allow_custom_value=True,
                            )
                    with gr.Column(scale=3, min_width=420):
                        previews = gr.Gallery(
                            label="Stage previews: x0 estimate decoded at each stage's own resolution",
                            columns=1,
                            height="auto",
                            object_fit="contain",
                            elem_id="stage-previews",
                            elem_classes=["captioned"],
                            preview=False,
                        )
                        video = gr.Video(
                            label="Final video (H.264 mp4)",
                            elem_id="final-video",
                            height=360,
                            autoplay=True,
                            loop=True,
                            interactive=False,
                        )
                        readout = gr.Markdown(label="Readout", elem_id="readout")
                        with gr.Accordion("Details (JSON)", open=False):
                            details = gr.JSON(label="Run details")

            # --- Compare -------------------------------------------------------------------------------
            with gr.Tab("Compare", id="compare"):
                gr.Markdown(
                    "Same prompt, same seed (so the runs share their noise), different schedules or "
                    "model variants, side by side."
                )
                with gr.Row():
                    c_prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], lines=1, scale=3)
                    c_seed = gr.Number(label="Seed", value=0, step=1, scale=1, **CHECKED_BY_HANDLER)
                    c_randomize = gr.Checkbox(label="Randomise seed", value=True, scale=1)
                    n_runs = gr.Radio([2, 3, 4], value=2, label="Runs", scale=1)
                with gr.Row():
                    quick_btns = {name: gr.Button(name) for name in QUICK_COMPARES}
                    compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
                    c_stop = gr.Button("Stop", variant="stop")
                with gr.Accordion("Negative prompt", open=False):
                    c_negative = gr.Textbox(
                        label="Negative prompt", placeholder="empty: each model's default"
                    )
                summary = gr.Markdown(label="Summary", elem_id="compare-summary")
                slot_columns, slot_inputs, slot_outputs = [], [], []
                with gr.Row(equal_height=False):
                    for i in range(MAX_RUNS):
                        with gr.Column(visible=i < 2, min_width=260) as column:
                            s = gr.Textbox(value=COMPARE_DEFAULTS[i], label=f"Run {i + 1}: schedule")
                            m = gr.Dropdown(
                                [], value=None, allow_custom_value=True, label=f"Run {i + 1}: model"
                            )
                            g = gr.Gallery(
                                label="Stages",
                                columns=1,
                                height="auto",
                                object_fit="contain",
                                elem_classes=["captioned"],
                                preview=False,
                            )
                            v = gr.Video(
                                label="Video", height=260, autoplay=True, loop=True, interactive=False
                            )
                            md = gr.Markdown(label="Readout")
                        slot_columns.append(column)
                        slot_inputs += [s, m]
                        slot_outputs += [g, v, md]
                with gr.Accordion("Details (JSON, one entry per run)", open=False):
                    summary_json = gr.JSON(label="Runs")

            # --- Learn ---------------------------------------------------------------------------------
            with gr.Tab("Learn", id="learn"):
                gr.Markdown(
                    "### Noise level and resolution over the steps\n"
                    "Each stage walks σ down its own interval. At a jump the latent is upsampled and "
                    "noise is added only in the new detail bands, so σ goes *up* (s = √N·e/(1 − e + √N·e)) "
                    "while the resolution doubles. Sizes: Wan2.1-1.3B at 81×448×832."
                )
                with gr.Row():
                    l_schedule = gr.Textbox(value="20-20-10", label="Schedule", scale=2)
                    l_shift = gr.Slider(1.0, 10.0, value=1.0, step=0.5, label="Timestep shift", scale=2)
                    l_plot_btn = gr.Button("Plot", scale=1)
                with gr.Row():
                    sigma_plot = gr.LinePlot(
                        x="step",
                        y="sigma",
                        color="stage",
                        title="σ over the steps",
                        tooltip=["step", "sigma", "stage", "latent"],
                        height=280,
                    )
                    tokens_plot = gr.LinePlot(
                        x="step",
                        y="tokens",
                        color="stage",
                        title="resolution: tokens per transformer forward",
                        tooltip=["step", "tokens", "latent"],
                        height=280,
                    )
                gr.Markdown(
                    "### One renoising jump\n"
                    "A small picture stands in for a latent. The low stage ends at noise level e at 32×32; "
                    "the jump upsamples it to 64×64 and adds noise only in the detail bands (zero mean in "
                    "every 2×2 block).\nThe result is distributed exactly like a training start point at "
                    "level s."
                )
                with gr.Row():
                    l_sigma_end = gr.Slider(
                        0.05,
                        0.95,
                        value=1 / 3,
                        step=0.001,
                        label="e: noise level at the end of the low stage",
                    )
                    l_wavelet = gr.Dropdown(["haar"], value="haar", label="Wavelet", allow_custom_value=True)
                    l_seed = gr.Number(value=0, step=1, label="Seed", **CHECKED_BY_HANDLER)
                jump_gallery = gr.Gallery(
                    label="The jump",
                    columns=3,
                    height="auto",
                    object_fit="contain",
                    elem_classes=["captioned"],
                    preview=False,
                )
                jump_note = gr.Markdown()
                gr.Markdown(
                    "### Compute (the paper's Table 1)\n"
                    "TFLOPs of the transformer per schedule from the engine's FLOPs model "
                    "(D·(8Nd² + 4N²d + 4Nd² + 4Ld² + 4NLd + 4Ndf) per forward). Add `cfg` after a schedule "
                    "to count two forwards per step."
                )
                with gr.Row():
                    l_spec = gr.Textbox(value=PAPER_SCHEDULES, label="Schedules (comma-separated)", scale=4)
                    l_model = gr.Dropdown(list(KNOWN_SIZES), value=PAPER_MODEL, label="Model size", scale=1)
                with gr.Row():
                    l_frames = gr.Number(value=PAPER_SIZE[0], label="Frames", **CHECKED_BY_HANDLER)
                    l_height = gr.Number(value=PAPER_SIZE[1], label="Height", **CHECKED_BY_HANDLER)
                    l_width = gr.Number(value=PAPER_SIZE[2], label="Width", **CHECKED_BY_HANDLER)
                    l_flops_btn = gr.Button("Compute")
                flops_table = gr.Markdown(elem_id="flops-table")

        # --- events ------------------------------------------------------------------------------------
        gen_inputs = [
            prompt,
            negative,
            seed,
            randomize,
            model,
            schedule,
            guidance,
            frames,
            height,
            width,
            wavelet,
        ]
        gen_event = gr.on(
            [run_btn.click, prompt.submit],
            h.generate,
            gen_inputs,
            [previews, video, readout, seed, details],
            api_name="generate",
            show_progress_on=[video],
            **engine_events,
        )
        stop_btn.click(h.stop, None, readout, cancels=[gen_event], queue=False, **PRIVATE)
        surprise_btn.click(h.surprise, None, prompt, queue=False, **PRIVATE)
        settings = [schedule, guidance, frames, height, width, model_info]
        model.input(h.model_settings, model, settings, **PRIVATE)
        presets.input(lambda preset: preset, presets, schedule, queue=False, **PRIVATE)
        schedule.change(
            lambda text: text.strip() if text.strip() in SCHEDULE_PRESETS else None,
            schedule,
            presets,
            queue=False,
            **PRIVATE,
        )
        gr.on(
            [schedule.change, model.change],
            h.check_schedule,
            [schedule, model],
            schedule_note,
            queue=False,
            **PRIVATE,
        )

        cmp_inputs = [c_prompt, c_negative, c_seed, c_randomize, n_runs, *slot_inputs]
        cmp_outputs = [summary, summary_json, *slot_outputs]
        slot_videos = slot_outputs[1::3]
        cmp_events = [
            compare_btn.click(
                h.compare,
                cmp_inputs,
                cmp_outputs,
                api_name="compare",
                show_progress_on=slot_videos,
                **engine_events,
            )
        ]
        for name, btn in quick_btns.items():
            setup = btn.click(
                partial(h.quick_compare, name),
                None,
                [n_runs, slot_inputs[0], slot_inputs[2]],
                queue=False,
                **PRIVATE,
            )
            cmp_events.append(
                setup.then(
                    h.compare,
                    cmp_inputs,
                    cmp_outputs,
                    show_progress_on=slot_videos,
                    **engine_events,
                    **PRIVATE,
                )
            )
        for event in cmp_events:  # the seed used (drawn when "Randomise" is ticked) goes back into its box
            event.success(h.compare_seed, summary_json, c_seed, queue=False, **PRIVATE)
        c_stop.click(h.stop, None, summary, cancels=cmp_events, queue=False, **PRIVATE)
        n_runs.change(
            lambda n: [gr.Column(visible=i < int(n)) for i in range(MAX_RUNS)],
            n_runs,
            slot_columns,
            queue=False,
            **PRIVATE,
        )

        sigma_io = ([l_schedule, l_shift], [sigma_plot, tokens_plot])
        gr.on([l_plot_btn.click, l_schedule.submit, l_shift.release], h.learn_sigma, *sigma_io, **PRIVATE)
        jump_io = ([l_sigma_end, l_wavelet, l_seed], [jump_gallery, jump_note])
        gr.on([l_sigma_end.release, l_wavelet.change, l_seed.submit], h.learn_jump, *jump_io, **PRIVATE)
        flops_io = ([l_spec, l_model, l_frames, l_height, l_width], flops_table)
        gr.on([l_flops_btn.click, l_spec.submit, l_model.change], h.learn_flops, *flops_io, **PRIVATE)

        # On page load (after the page is interactive): model lists and defaults, then the Learn views.
        models = [model, *slot_inputs[1::2]]
        load = demo.load(h.page_load, settings[:-1], [*models, *settings], **PRIVATE)
        load.then(h.wavelets, None, [wavelet, l_wavelet], **PRIVATE)
        load.then(h.learn_sigma, *sigma_io, **PRIVATE)
        load.then(h.learn_jump, *jump_io, **PRIVATE)
        load.then(h.learn_flops, *flops_io, **PRIVATE)

    return Studio(config=config, handlers=h, demo=demo)


def _register_zero_gpu() -> None:
    """On a ZeroGPU Space, `spaces.GPU` must wrap the generation function before the server starts, so the
    (slow) engine import happens here instead of in the background."""
    try:
        import spaces  # noqa: F401
    except ImportError:
        return
    import app.runs  # noqa: F401
