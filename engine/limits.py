"""The work one request may ask for: frames, height and width each bounded, and the transformer compute
(TFLOPs, counted by `engine.flops` for the request's model, schedule and guidance) bounded per host kind;
and the strict number checks every entry point (engine, CLI, app) shares.

Checked by `engine.pipeline.make_request` before anything is allocated, so a request that would hold a
model for minutes (or ask the allocator for 167 GB) is refused at once with a message that names the
limit and the largest size that fits. A CPU host gets the small budget; a GPU host (a model on CUDA, or
`PYRAMIDALWAN_BUDGET=gpu` / `--budget gpu`) the large one; `PYRAMIDALWAN_MAX_TFLOPS` / `--max-tflops`
sets the compute limit outright.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, replace

from engine.flops import TERA, TransformerSize, schedule_flops
from engine.pyramid import DEFAULT_NUM_STAGES, frame_multiple, spatial_multiple, stage_geometry

MAX_SEED = 2**32 - 1  # seeds are whole numbers 0 … MAX_SEED
BUDGET_ENV = "PYRAMIDALWAN_BUDGET"
MAX_TFLOPS_ENV = "PYRAMIDALWAN_MAX_TFLOPS"


def shown(value) -> str:
    """repr for messages, cut short (a fuzzed value can be megabytes long)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def finite_number(value, name: str) -> float:
    """A real, finite number (bools, strings, NaN and ±inf are refused with a message naming `name`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        raise ValueError(f"{name} is far too large, got {shown(value)}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {shown(value)}")
    return number


def whole_number(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (a float only when it is whole: 7.0 but not 1.5), within [minimum, maximum]."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    else:
        real = finite_number(value, name)
        if real != int(real):
            raise ValueError(f"{name} must be a whole number, got {shown(value)}")
        number = int(real)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        span = f" between {minimum} and {maximum}" if maximum is not None else f" of at least {minimum}"
        raise ValueError(f"{name} must be a whole number{span}, got {shown(value)}")
    return number


@dataclass(frozen=True)
class Budget:
    """Upper bounds for one request."""

    kind: str  # "cpu" or "gpu": which defaults these are (named in error messages)
    max_frames: int
    max_side: int  # height and width, each
    max_pixels: int  # frames × height × width: bounds the VAE decode, which the TFLOPs do not count
    max_tflops: float  # transformer compute of the whole request, CFG included

    def check(
        self,
        frames: int,
        height: int,
        width: int,
        counts: tuple[int, ...] | None = None,
        size: TransformerSize | None = None,
        cfg: bool = False,
        **geometry,
    ) -> None:
        """Raise ValueError naming the limit and the largest valid size when the request exceeds it.

        `counts` and `size` (the schedule and the model's transformer) enable the compute bound;
        `geometry` holds stage_geometry's keyword arguments (boundaries, latent_channels)."""
        problem = self.problem(frames, height, width, counts, size, cfg, **geometry)
        if problem:
            largest = self.largest(frames, height, width, counts, size, cfg, **geometry)
            raise ValueError(f"{problem}; {largest}")

    def problem(self, frames, height, width, counts=None, size=None, cfg=False, **geometry) -> str | None:
        """What exceeds the budget, or None. The per-dimension bounds come first (integer comparisons,
        so 10**12 frames costs nothing); the compute bound needs a valid pyramid."""
        where = f"this host's {self.kind} budget (a GPU host sets {BUDGET_ENV}=gpu)"
        for name, value, limit in (
            ("frames", frames, self.max_frames),
            ("height", height, self.max_side),
            ("width", width, self.max_side),
        ):
            if value > limit:
                return f"{name} {value} is over the limit of {limit} in {where}"
        pixels = frames * height * width
        if pixels > self.max_pixels:
            return (
                f"{frames}×{height}×{width} is {pixels:,} pixels, over the limit of {self.max_pixels:,} "
                f"per video in {where}"
            )
        if counts is None or size is None:
            return None
        tflops = self.tflops(frames, height, width, counts, size, cfg, **geometry)
        if tflops > self.max_tflops:
            steps = "-".join(map(str, counts))
            return (
                f"{frames}×{height}×{width} at {steps}{' with guidance' if cfg else ''} needs {tflops:.3g} "
                f"TFLOPs, over the limit of {self.max_tflops:g} TFLOPs per request in this host's "
                f"{self.kind} "
                f"budget ({MAX_TFLOPS_ENV} sets it)"
            )
        return None

    @staticmethod
    def tflops(frames, height, width, counts, size, cfg=False, **geometry) -> float:
        geo = stage_geometry(frames, height, width, num_stages=len(counts), **geometry)
        return sum(schedule_flops(geo, counts, size, cfg=cfg)) / TERA

    def largest(self, frames, height, width, counts=None, size=None, cfg=False, **geometry) -> str:
        """'the largest valid at F frames is F×H×W' (same aspect ratio, same steps), for messages."""
        stages = len(counts) if counts else DEFAULT_NUM_STAGES
        m, fm = spatial_multiple(stages), frame_multiple(stages)
        f = max(1 + fm, 1 + (min(frames, self.max_frames) - 1) // fm * fm)
        ratio = width / height if height > 0 and width > 0 else 1.0
        for side in range(self.max_side // m * m, 0, -m):  # the longer side, shrinking
            h, w = (side, round(side * ratio / m) * m) if ratio <= 1 else (round(side / ratio / m) * m, side)
            if h >= m and w >= m and not self.problem(f, h, w, counts, size, cfg, **geometry):
                return f"the largest valid at {f} frames is {f}×{h}×{w}"
        return f"nothing fits at {f} frames with these steps; use fewer steps"


CPU_BUDGET = Budget("cpu", max_frames=81, max_side=512, max_pixels=17 * 512 * 512, max_tflops=1.0)
# Wan2.1-14B with CFG at 81×448×832 and 0-0-50 is about 151,000 TFLOPs; 720p 81 frames fits in pixels.
GPU_BUDGET = Budget("gpu", max_frames=161, max_side=1280, max_pixels=81 * 720 * 1280, max_tflops=200_000.0)
BUDGETS = {"cpu": CPU_BUDGET, "gpu": GPU_BUDGET}


def host_budget(
    kind: str | None = None, max_tflops: float | str | None = None, on_gpu: bool = False
) -> Budget:
    """The budget for this host: `kind` (else $PYRAMIDALWAN_BUDGET, else gpu when the model runs on a GPU,
    else cpu), with its compute limit replaced by `max_tflops` (else $PYRAMIDALWAN_MAX_TFLOPS) if set."""
    kind = (kind or os.environ.get(BUDGET_ENV) or ("gpu" if on_gpu else "cpu")).strip().lower()
    if kind not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {kind!r}")
    budget = BUDGETS[kind]
    raw = max_tflops if max_tflops is not None else os.environ.get(MAX_TFLOPS_ENV)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return budget
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"max TFLOPs must be a positive number, got {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"max TFLOPs must be a positive number, got {raw!r}")
    return replace(budget, max_tflops=value)
