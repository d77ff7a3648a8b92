"""ToyBench: generate videos for a prompt set with one model and schedule, and score them.

    python -m bench.toybench --model NAME|PATH --schedule 20-20-10 [--prompts-file FILE | --n N]
                             [--seed S] [--guidance G] [--frames F --height H --width W] [--device cpu]
                             [--step-rule euler|x0] [--json]

Prompts are captions in the world's grammar (one per line in a prompts file). The default set is fixed by
--seed: single-object captions, three in four from the training compositions and one in four held out
(see world/split.py). Prompt i is generated with seed S + i. Real reference clips are rendered for the
same captions at the model's size; the Fréchet distance of two independent real renders ("fd_floor") is
reported beside "fd" so the number can be read at this n.

Prints a JSON object: model, schedule, n, adherence {shape, color, background, motion, speed, all},
adherence_seen / adherence_heldout (same keys, for the two parts of the prompt set), fd, fd_floor,
temporal, coherence (main object present in every frame, stable size, motion inside 4-frame chunks),
centroid_motion, seconds_per_video, tflops_per_video.

As a library: `evaluate(model, schedule, prompts, seed)` returns that dict; `generate_videos` /
`generate_one` and `score` are its two halves (bench.report interleaves schedules with them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from bench.metrics import adherence, evaluate_videos, frechet_distance, per_class
from bench.probe import AttributeProbe, load_probe
from world import ClipAttributes, caption, clip_rng, is_held_out, parse, render_batch, sample_attributes

if TYPE_CHECKING:  # engine.pipeline imports diffusers: loaded only when generating
    from engine.pipeline import Request, Result

REFERENCE_SEED = 1_000_003  # layout seed offset of the real reference clips
FLOOR_SEED = 2_000_029  # ... and of the second, independent real draw for the FD floor


def default_prompts(n: int, seed: int = 0) -> list[str]:
    """n single-object captions fixed by seed; every fourth one uses a held-out composition."""
    prompts = []
    for i in range(n):
        rng = clip_rng(seed, i)
        split = "heldout" if i % 4 == 3 else "train"
        prompts.append(caption(sample_attributes(rng, split, n_objects=1), rng))
    return prompts


def read_prompts(path: str | Path) -> list[str]:
    """One caption per non-empty line; a line outside the grammar raises ValueError naming the line."""
    prompts = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parse(line)
        except ValueError as err:
            raise ValueError(f"{path}:{number}: {err}") from err
        prompts.append(line.strip())
    if not prompts:
        raise ValueError(f"{path} has no prompts")
    return prompts


def _subset_adherence(
    predictions: dict, attributes: Sequence[ClipAttributes], keep: np.ndarray
) -> dict | None:
    if not keep.any():
        return None
    sub = {k: v[torch.from_numpy(keep)] for k, v in predictions.items()}
    return adherence(sub, [a for a, k in zip(attributes, keep, strict=True) if k])


@dataclass
class Generation:
    """The videos of one model × schedule over a prompt set, with what each one cost."""

    model: str
    request: Request  # of the last prompt: schedule, geometry and guidance are the same for all
    videos: list[torch.Tensor] = field(default_factory=list)  # each (3, F, H, W) in [-1, 1]
    seconds: list[float] = field(default_factory=list)  # wall time of each generation
    sampling_seconds: list[float] = field(default_factory=list)  # of which denoising (no encode/decode)
    tflops: list[float] = field(default_factory=list)  # the engine's FLOPs model, CFG included


def generate_one(
    model,  # engine.models.WanModel
    prompt: str,
    schedule: str | None = None,
    seed: int = 0,
    guidance: float | None = None,
    size: tuple[int | None, int | None, int | None] = (None, None, None),
    step_rule: str | None = None,
    shared_noise: float | None = None,
) -> tuple[torch.Tensor, Result]:
    """One video (3, F, H, W) in [-1, 1] and the engine's Result (its seconds, TFLOPs and request).
    step_rule, shared_noise: None for the model card's."""
    from engine.pipeline import make_request, run

    request = make_request(
        model,
        prompt,
        schedule=schedule,
        frames=size[0],
        height=size[1],
        width=size[2],
        guidance=guidance,
        seed=seed,
        step_rule=step_rule,
        shared_noise=shared_noise,
    )
    result = run(model, request)
    return torch.from_numpy(result.frames).permute(3, 0, 1, 2).float() / 127.5 - 1, result


def generate_videos(
    model,
    prompts: Sequence[str],
    schedule: str | None = None,
    seed: int = 0,
    guidance: float | None = None,
    size: tuple[int | None, int | None, int | None] = (None, None, None),
    step_rule: str | None = None,
    shared_noise: float | None = None,
) -> Generation:
    """One video per prompt, prompt i with seed + i."""
    if not prompts:
        raise ValueError("no prompts to generate")
    generation = None
    for i, prompt in enumerate(prompts):
        video, result = generate_one(
            model, prompt, schedule, seed + i, guidance, size, step_rule, shared_noise
        )
        generation = generation or Generation(model.name, result.request)
        add_to(generation, video, result)
    return generation


def add_to(generation: Generation, video: torch.Tensor, result: Result) -> None:
    generation.request = result.request
    generation.videos.append(video)
    generation.seconds.append(result.total_seconds)
    generation.sampling_seconds.append(result.sampling_seconds)
    generation.tflops.append(result.total_tflops)


def reference_clips(
    attributes: Sequence[ClipAttributes], seed: int, frames: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real renders of the captions (the reference) and a second, independent draw (for the FD floor)."""
    real = render_batch(attributes, seed + REFERENCE_SEED, frames, height, width)
    real_again = render_batch(attributes, seed + FLOOR_SEED, frames, height, width)
    return real, real_again


def score(
    generation: Generation,
    prompts: Sequence[str],
    seed: int = 0,
    probe: AttributeProbe | None = None,
    reference: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict:
    """Score generated videos against their captions; returns the JSON-ready ToyBench result dict.

    reference: (real, real_again) from `reference_clips` for these prompts, seed and size (rendered here
    when not given; pass it to score several schedules of one model against the same real clips)."""
    probe = probe or load_probe()
    attributes = [parse(p) for p in prompts]
    if len(attributes) != len(generation.videos):
        raise ValueError(f"{len(generation.videos)} videos but {len(attributes)} prompts")
    request = generation.request
    g = request.geometry
    real, real_again = reference or reference_clips(attributes, seed, g.frames, g.height, g.width)
    generated = torch.stack(generation.videos)  # (B, 3, F, H, W) in [-1, 1]
    scores = evaluate_videos(generated, attributes, probe, real)
    pred = probe.predict(generated)
    held = np.array([is_held_out(a) for a in attributes])
    floor = frechet_distance(probe.predict(real_again)["features"], probe.predict(real)["features"])
    return {
        "model": generation.model,
        "schedule": request.schedule,
        "guidance": request.guidance,
        "shared_noise": request.shared_noise,
        "frames": g.frames,
        "height": g.height,
        "width": g.width,
        "n": len(prompts),
        "n_heldout": int(held.sum()),
        "adherence": scores["adherence"],
        "adherence_seen": _subset_adherence(pred, attributes, ~held),
        "adherence_heldout": _subset_adherence(pred, attributes, held),
        "per_class": {head: per_class(pred, attributes, head) for head in ("shape", "motion")},
        "fd": scores["fd"],
        "fd_floor": floor,
        "temporal": scores["temporal"],
        "coherence": scores["coherence"],
        "centroid_motion": scores["centroid_motion"],
        "seconds_per_video": float(np.mean(generation.seconds)),
        "sampling_seconds_per_video": float(np.mean(generation.sampling_seconds))
        if generation.sampling_seconds
        else None,
        "tflops_per_video": float(np.mean(generation.tflops)),
    }


def evaluate(
    model,  # engine.models.WanModel
    schedule: str | None,
    prompts: Sequence[str],
    seed: int = 0,
    guidance: float | None = None,
    probe: AttributeProbe | None = None,
    size: tuple[int | None, int | None, int | None] = (None, None, None),
    step_rule: str | None = None,
    shared_noise: float | None = None,
) -> dict:
    """Generate one video per prompt (seed + i) and score them; returns the JSON-ready result dict.

    schedule: None for the model's own. size: (frames, height, width) overrides of the model's defaults
    (None keeps the default)."""
    generation = generate_videos(model, prompts, schedule, seed, guidance, size, step_rule, shared_noise)
    return score(generation, prompts, seed, probe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="zoo name, random-tiny, or a diffusers folder")
    parser.add_argument("--schedule", default=None, help="e.g. 20-20-10 (default: the model's own)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompts-file", default=None)
    source.add_argument("--n", type=int, default=32, help="size of the default prompt set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--frames", type=int, default=None, help="default: the model's")
    parser.add_argument("--height", type=int, default=None, help="default: the model's")
    parser.add_argument("--width", type=int, default=None, help="default: the model's")
    parser.add_argument("--step-rule", default=None, choices=["euler", "x0"], help="default: the model's")
    parser.add_argument(
        "--shared-noise",
        type=float,
        default=None,
        help="starting noise shared by all frames; default: the model's",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)

    from engine.models import load_model

    try:
        prompts = read_prompts(args.prompts_file) if args.prompts_file else default_prompts(args.n, args.seed)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model = load_model(args.model, device=args.device)
    if not args.json:
        print(
            f"ToyBench: {len(prompts)} prompts, model {model.name}, schedule {args.schedule or 'default'}",
            file=sys.stderr,
        )
    size = (args.frames, args.height, args.width)
    result = evaluate(
        model,
        args.schedule,
        prompts,
        args.seed,
        args.guidance,
        size=size,
        step_rule=args.step_rule,
        shared_noise=args.shared_noise,
    )
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
