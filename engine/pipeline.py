"""Text → video with one model: encode the prompt, sample (plain or pyramidal), decode.

`generate` is the single entry point the CLI, the app and the benchmark share. It validates everything
at the edge, builds the σ grids the sampler walks, then yields the sampler's events; the last one is a
`Finished` (kind "done") that carries the decoded `Result`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from engine.flops import TERA, schedule_flops
from engine.limits import MAX_SEED, Budget, finite_number, host_budget, shown, whole_number
from engine.models import WanModel
from engine.pyramid import PyramidGeometry, stage_geometry
from engine.sampling import STEP_RULES, Event, cfg_denoiser, sample, stage_denoiser
from engine.schedule import format_schedule, is_plain, parse_schedule, schedule_sigmas
from engine.transitions import DEFAULT_WAVELET, available_wavelets
from engine.video import to_uint8_frames

MAX_PROMPT_WORDS = 200
MAX_PROMPT_CHARS = 4000


@dataclass
class Request:
    """One generation, fully resolved (model defaults filled in, everything validated)."""

    prompt: str
    negative_prompt: str
    counts: tuple[int, ...]
    geometry: PyramidGeometry
    guidance: float
    seed: int
    wavelet: str
    step_rule: str
    shift: float
    shared_noise: float = 0.0

    @property
    def schedule(self) -> str:
        return format_schedule(self.counts)


@dataclass
class Result:
    """A finished generation."""

    request: Request
    frames: np.ndarray  # (F, H, W, 3) uint8
    latents: torch.Tensor  # (1, C, T, H, W) normalised
    stages: list[dict] = field(default_factory=list)
    total_seconds: float = 0.0
    sampling_seconds: float = 0.0
    model_seconds: float = 0.0
    total_tflops: float = 0.0
    unknown_words: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        r = self.request
        return {
            "seed": r.seed,
            "schedule": r.schedule,
            "prompt": r.prompt,
            "frames": r.geometry.frames,
            "height": r.geometry.height,
            "width": r.geometry.width,
            "guidance": r.guidance,
            "wavelet": r.wavelet,
            "step_rule": r.step_rule,
            "shift": r.shift,
            "shared_noise": r.shared_noise,
            "stages": self.stages,
            "total_seconds": round(self.total_seconds, 4),
            "sampling_seconds": round(self.sampling_seconds, 4),
            "model_seconds": round(self.model_seconds, 4),
            "total_tflops": self.total_tflops,
            "unknown_words": self.unknown_words,
        }


@dataclass(kw_only=True)
class Finished(Event):
    """The sampler's "done" event with the pipeline's decoded result attached."""

    result: Result


def random_seed() -> int:
    return random.SystemRandom().randrange(MAX_SEED + 1)


def make_request(
    model: WanModel,
    prompt: str,
    negative_prompt: str | None = None,
    schedule: str | list[int] | None = None,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    wavelet: str = DEFAULT_WAVELET,
    step_rule: str | None = None,
    shift: float | None = None,
    budget: Budget | None = None,
    shared_noise: float | None = None,
) -> Request:
    """Fill in the model's defaults and validate; raises ValueError with a message meant for users.

    `budget` bounds the request's size and compute (default: this host's, see engine/limits.py); it is
    checked before anything is allocated."""
    card = model.card
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(
            "the prompt is empty; describe the video, e.g. 'a red circle moving left on a black background'"
        )
    words = len(prompt.split())
    if words > MAX_PROMPT_WORDS:
        raise ValueError(f"the prompt has {words} words; keep it under {MAX_PROMPT_WORDS}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt has {len(prompt):,} characters; keep it under {MAX_PROMPT_CHARS:,}")
    counts = parse_schedule(schedule if schedule is not None else card.schedule, card.num_stages)
    frames = whole_number(card.frames if frames is None else frames, "frames", minimum=1)
    height = whole_number(card.height if height is None else height, "height", minimum=1)
    width = whole_number(card.width if width is None else width, "width", minimum=1)
    guidance = finite_number(card.guidance if guidance is None else guidance, "guidance")
    if not (0.0 <= guidance <= 30.0):
        raise ValueError(f"guidance must be between 0 and 30, got {guidance:g}")
    seed = random_seed() if seed is None else whole_number(seed, "seed", minimum=0, maximum=MAX_SEED)
    if wavelet not in available_wavelets():
        raise ValueError(f"unknown wavelet {shown(wavelet)}; choose one of {', '.join(available_wavelets())}")
    step_rule = step_rule or card.step_rule
    if step_rule not in STEP_RULES:
        raise ValueError(f"step rule must be one of {', '.join(STEP_RULES)}, got {shown(step_rule)}")
    shift = finite_number(model.shift if shift is None else shift, "shift")
    if shift <= 0:
        raise ValueError(f"shift must be > 0, got {shift:g}")
    shared_noise = finite_number(card.shared_noise if shared_noise is None else shared_noise, "shared noise")
    if not 0.0 <= shared_noise < 1.0:
        raise ValueError(f"shared noise must be at least 0 and below 1, got {shared_noise:g}")
    budget = budget or host_budget(on_gpu=model.device.type == "cuda")
    geometry_args = {"latent_channels": model.latent_channels, "boundaries": card.boundaries}
    budget.check(frames, height, width, counts, model.size, cfg=guidance != 1.0, **geometry_args)
    geometry = stage_geometry(frames, height, width, num_stages=card.num_stages, **geometry_args)
    negative = card.negative_prompt if negative_prompt is None else negative_prompt
    return Request(
        prompt.strip(),
        negative,
        counts,
        geometry,
        guidance,
        int(seed),
        wavelet,
        step_rule,
        shift,
        shared_noise,
    )


def stage_table(request: Request, model: WanModel, stage_times: list[float] | None = None) -> list[dict]:
    """Per active stage: resolution, steps, σ range, TFLOPs (and seconds once run)."""
    cfg = request.guidance != 1.0
    flops = schedule_flops(request.geometry, request.counts, model.size, cfg=cfg)
    rows = []
    grids = schedule_sigmas(request.geometry, request.counts, request.shift)
    for k, stage in enumerate(request.geometry.stages):
        if grids[k] is None:
            continue
        row = {
            "stage": k,
            "steps": request.counts[k],
            "latent": list(stage.latent_shape[1:]),
            "pixels": list(stage.pixel_shape),
            "tokens": stage.tokens,
            "sigma_start": round(float(grids[k][0]), 4),
            "sigma_end": round(float(grids[k][-1]), 4),
            "tflops": flops[k] / TERA,
        }
        if stage_times is not None:
            row["seconds"] = round(stage_times[len(rows)], 4)
        rows.append(row)
    return rows


def generate(model: WanModel, request: Request) -> Iterator[Event]:
    """Run one request; yields sampler events, the last a `Finished` ("done") carrying the `Result`."""
    start = time.perf_counter()
    cfg = request.guidance != 1.0
    negative = [request.negative_prompt] if cfg else None
    cond, uncond = model.encode_prompt([request.prompt], negative)
    denoiser = cfg_denoiser(model.transformer, cond, uncond, request.guidance)
    if model.top_expert is not None:  # the full-resolution stage samples with its own transformer
        top = cfg_denoiser(model.top_expert, cond, uncond, request.guidance)
        denoiser = stage_denoiser({request.geometry.num_stages - 1: top}, denoiser)
    generator = torch.Generator("cpu").manual_seed(request.seed)
    sigmas = schedule_sigmas(request.geometry, request.counts, request.shift)
    for event in sample(
        denoiser,
        request.geometry,
        sigmas,
        generator,
        step_rule=request.step_rule,
        wavelet=request.wavelet,
        shared_noise=request.shared_noise,
    ):
        if event.kind != "done":
            yield event
            continue
        video = model.decode(event.x0)
        frames = to_uint8_frames(video)
        stages = stage_table(request, model, event.stage_times)
        result = Result(
            request=request,
            frames=frames,
            latents=event.x0,
            stages=stages,
            total_seconds=time.perf_counter() - start,
            sampling_seconds=event.elapsed,
            model_seconds=event.model_seconds,
            total_tflops=sum(r["tflops"] for r in stages),
            unknown_words=model.unknown_words(request.prompt),
        )
        yield Finished(**{f.name: getattr(event, f.name) for f in fields(event)}, result=result)


def run(model: WanModel, request: Request) -> Result:
    """Run to completion, ignoring progress."""
    for event in generate(model, request):
        if event.kind == "done":
            return event.result
    raise RuntimeError("sampler ended without a result")


__all__ = [
    "Request",
    "Result",
    "Finished",
    "make_request",
    "generate",
    "run",
    "is_plain",
    "random_seed",
    "stage_table",
]
