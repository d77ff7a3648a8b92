"""What the operator sets when starting the app: model folders, where outputs go, queue and concurrency,
and the memory mode models are loaded in; `app.py`'s flags (`build_parser`, `parse_config`).

Light on purpose (no torch, no engine import beyond the torch-free engine.memory and engine.limits):
`python app.py` must show an interactive page within seconds, so everything that imports torch/diffusers
is loaded after the page is up.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_DIRS_ENV = "PYRAMIDALWAN_MODEL_DIRS"
# Hub repositories (comma-separated ids) already in this machine's Hugging Face cache: on a Space, the
# ones its README front matter lists under `preload_from_hub` (downloaded when the Space is built).
HUB_MODELS_ENV = "PYRAMIDALWAN_HUB_MODELS"
OUTPUTS_ENV = "PYRAMIDALWAN_OUTPUTS"
# Memory modes of the models the app loads (engine/memory.py), as `python -m engine generate` takes them.
OFFLOAD_ENV = "PYRAMIDALWAN_OFFLOAD"  # none | model | sequential
SWITCH_ENVS = {  # on/off settings: 1/true/yes/on or 0/false/no/off
    "text_encoder_cpu": "PYRAMIDALWAN_TEXT_ENCODER_CPU",
    "vae_tiling": "PYRAMIDALWAN_VAE_TILING",
    "vae_slicing": "PYRAMIDALWAN_VAE_SLICING",
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass
class AppConfig:
    """Serving settings; `from_env` fills them from environment variables, `app.py` from its flags."""

    model_dirs: list[str] = field(default_factory=list)  # extra real-model folders (diffusers layout)
    outputs_root: Path = REPO_ROOT / "outputs" / "app"  # one sub-folder per request lives here
    output_ttl_s: float = 3600.0  # request folders (and gradio's cached copies) older than this are deleted
    queue_size: int = 16  # requests waiting beyond this are refused with "queue is full"
    workers: int = 2  # generation requests running at once, over all models
    per_model: int = 1  # generation requests running at once on one model (others wait their turn)
    warm_up: bool = True  # import the engine and load the default model in the background at start
    budget: str | None = None  # per-request limits, "cpu" or "gpu" (engine/limits.py); None: by the device
    max_tflops: float | None = None  # replaces the budget's compute limit per request
    max_upload: str = "1kb"  # the page has no file input: gradio's upload route takes no more than this
    offload: str = "none"  # accelerate CPU offload of the models loaded: "none", "model" or "sequential"
    text_encoder_cpu: bool = False  # the text encoder stays on the CPU, its output moves to the device
    vae_tiling: bool = False  # decode in spatial tiles (diffusers' AutoencoderKLWan.enable_tiling)
    vae_slicing: bool = False  # decode one video of a batch at a time (enable_slicing)

    def memory_mode(self):
        """The engine's MemoryMode for every model the app loads (engine.models.load_model(memory=…))."""
        from engine.memory import MemoryMode  # light: no torch

        return MemoryMode(self.offload, self.text_encoder_cpu, self.vae_tiling, self.vae_slicing)

    @classmethod
    def from_env(
        cls, extra_model_dirs: list[str] | None = None, hub_models: list[str] | None = None, **overrides
    ) -> AppConfig:
        """Model folders from $PYRAMIDALWAN_MODEL_DIRS (os.pathsep-separated) plus `extra_model_dirs`, then
        the cached snapshot folder of every hub id in $PYRAMIDALWAN_HUB_MODELS (comma-separated) and
        `hub_models` (`hub_snapshot`);
        outputs root from $PYRAMIDALWAN_OUTPUTS, memory mode from $PYRAMIDALWAN_OFFLOAD,
        $PYRAMIDALWAN_TEXT_ENCODER_CPU, $PYRAMIDALWAN_VAE_TILING and $PYRAMIDALWAN_VAE_SLICING; other
        fields from `overrides` (None values ignored; an override beats its environment variable).
        Raises ValueError naming the setting (and its variable) for a bad value."""
        dirs = [d for d in os.environ.get(MODEL_DIRS_ENV, "").split(os.pathsep) if d.strip()]
        dirs += list(extra_model_dirs or [])
        hub = [h.strip() for h in os.environ.get(HUB_MODELS_ENV, "").split(",") if h.strip()]
        dirs += [hub_snapshot(repo_id) for repo_id in hub + list(hub_models or [])]
        unique = list(dict.fromkeys(str(Path(d).expanduser().resolve()) for d in dirs))
        values = {k: v for k, v in overrides.items() if v is not None}
        if "outputs_root" not in values and os.environ.get(OUTPUTS_ENV):
            values["outputs_root"] = os.environ[OUTPUTS_ENV]
        if "outputs_root" in values:
            values["outputs_root"] = Path(values["outputs_root"]).expanduser().resolve()
        if "offload" not in values and os.environ.get(OFFLOAD_ENV, "").strip():
            values["offload"] = os.environ[OFFLOAD_ENV].strip().lower()
        for name, env in SWITCH_ENVS.items():
            if name not in values and env in os.environ:
                values[name] = _switch(os.environ[env], env)
        config = cls(model_dirs=unique, **values)
        try:
            config.memory_mode()  # refuse a bad offload mode at start-up
        except ValueError as err:
            where = (
                "" if "offload" in overrides and overrides["offload"] is not None else f" (${OFFLOAD_ENV})"
            )
            raise ValueError(f"{err}{where}") from None
        for name in ("queue_size", "workers", "per_model"):
            if getattr(config, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
        from engine.limits import host_budget  # light: no torch

        host_budget(config.budget, config.max_tflops)  # refuse a bad kind or limit at start-up
        return config


def hub_snapshot(repo_id: str) -> str:
    """The local folder of a hub model already in the Hugging Face cache (no download: on a Space,
    `preload_from_hub` fetched it when the Space was built); ValueError saying how to get it otherwise."""
    from huggingface_hub import snapshot_download  # light: no torch
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError) as err:
        raise ValueError(
            f"hub model {repo_id!r} is not in this machine's Hugging Face cache ({type(err).__name__}); "
            f"on a Space list it under preload_from_hub in README.md's front matter, elsewhere fetch it "
            f"first with `hf download {repo_id}`"
        ) from None


def _switch(raw: str, env: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ValueError(f"${env} must be one of 1/true/yes/on or 0/false/no/off, got {raw!r}")


def build_parser() -> argparse.ArgumentParser:
    """`python app.py`'s flags; each left out falls back to its environment variable, then the default."""
    parser = argparse.ArgumentParser(description="PyramidalWan Studio web app")
    parser.add_argument(
        "--model-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a model folder in diffusers layout to offer (repeatable)",
    )
    parser.add_argument(
        "--hub-model",
        action="append",
        default=[],
        metavar="REPO",
        help=f"a hub model id already in the Hugging Face cache to offer (repeatable; ${HUB_MODELS_ENV})",
    )
    parser.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT or 7860")
    parser.add_argument("--host", default=None, help="default 127.0.0.1; 0.0.0.0 to serve the network")
    parser.add_argument(
        "--outputs", default=None, help="root of per-request output folders (default outputs/app)"
    )
    parser.add_argument(
        "--output-ttl", type=float, default=None, help="seconds to keep outputs (default 3600)"
    )
    parser.add_argument(
        "--queue-size", type=int, default=None, help="waiting requests before 'queue full' (16)"
    )
    parser.add_argument("--workers", type=int, default=None, help="generations running at once (default 2)")
    parser.add_argument(
        "--per-model", type=int, default=None, help="generations at once per model (default 1)"
    )
    parser.add_argument("--no-warm-up", action="store_true", help="do not preload the default model")
    parser.add_argument(
        "--budget",
        choices=["cpu", "gpu"],
        default=None,
        help="per-request limits (default $PYRAMIDALWAN_BUDGET, else gpu when CUDA is present)",
    )
    parser.add_argument(
        "--max-tflops",
        type=float,
        default=None,
        help="compute limit per request in TFLOPs (default $PYRAMIDALWAN_MAX_TFLOPS, else the budget's)",
    )
    memory = parser.add_argument_group(
        "memory modes of the models the app loads (engine/memory.py; as `python -m engine generate`)"
    )
    memory.add_argument(
        "--offload",
        choices=["none", "model", "sequential"],
        default=None,
        help="accelerate CPU offload: model (one component on the device at a time) or sequential (one "
        f"layer at a time; least memory, slowest); default ${OFFLOAD_ENV}, else none",
    )
    for name, env in SWITCH_ENVS.items():
        what = {
            "text_encoder_cpu": "run the text encoder on the CPU",
            "vae_tiling": "decode in spatial tiles (diffusers VAE tiling)",
            "vae_slicing": "decode one video of a batch at a time",
        }[name]
        memory.add_argument(
            "--" + name.replace("_", "-"),
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"{what}; default ${env}, else off",
        )
    return parser


def parse_config(
    argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None
) -> tuple[AppConfig, argparse.Namespace]:
    """Flags (then environment variables, then defaults) → the app's settings and the parsed flags; a bad
    value exits with status 2 and a one-line message naming the flag or variable."""
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    try:
        config = AppConfig.from_env(
            args.model_dir,
            args.hub_model,
            outputs_root=args.outputs,
            output_ttl_s=args.output_ttl,
            queue_size=args.queue_size,
            workers=args.workers,
            per_model=args.per_model,
            warm_up=False if args.no_warm_up else None,
            budget=args.budget,
            max_tflops=args.max_tflops,
            offload=args.offload,
            text_encoder_cpu=args.text_encoder_cpu,
            vae_tiling=args.vae_tiling,
            vae_slicing=args.vae_slicing,
        )
    except ValueError as err:
        parser.error(str(err))
    return config, args
