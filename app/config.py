"""What the operator sets when starting the app: model folders, where outputs go, queue and concurrency.

Light on purpose (no torch, no engine import): `python app.py` must show an interactive page within
seconds, so everything that imports torch/diffusers is loaded after the page is up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_DIRS_ENV = "PYRAMIDALWAN_MODEL_DIRS"
OUTPUTS_ENV = "PYRAMIDALWAN_OUTPUTS"


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

    @classmethod
    def from_env(cls, extra_model_dirs: list[str] | None = None, **overrides) -> AppConfig:
        """Model folders from $PYRAMIDALWAN_MODEL_DIRS (os.pathsep-separated) plus `extra_model_dirs`;
        outputs root from $PYRAMIDALWAN_OUTPUTS; other fields from `overrides` (None values ignored)."""
        dirs = [d for d in os.environ.get(MODEL_DIRS_ENV, "").split(os.pathsep) if d.strip()]
        dirs += list(extra_model_dirs or [])
        unique = list(dict.fromkeys(str(Path(d).expanduser().resolve()) for d in dirs))
        values = {k: v for k, v in overrides.items() if v is not None}
        if "outputs_root" not in values and os.environ.get(OUTPUTS_ENV):
            values["outputs_root"] = os.environ[OUTPUTS_ENV]
        if "outputs_root" in values:
            values["outputs_root"] = Path(values["outputs_root"]).expanduser().resolve()
        config = cls(model_dirs=unique, **values)
        for name in ("queue_size", "workers", "per_model"):
            if getattr(config, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
        from engine.limits import host_budget  # light: no torch

        host_budget(config.budget, config.max_tflops)  # refuse a bad kind or limit at start-up
        return config
