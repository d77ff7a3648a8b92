"""ToyBench: generate videos for a prompt set with one model and schedule, and score them.

    python -m bench.toybench --model NAME|PATH --schedule 20-20-10 [--prompts-file FILE | --n N]
                             [--seed S] [--guidance G] [--frames F --height H --width W] [--device cpu]
                             [--json]

Prompts are captions in the world's grammar (one per line in a prompts file). The default set is fixed by
--seed: single-object captions, three in four from the training compositions and one in four held out
(see world/split.py). Prompt i is generated with seed S + i. Real reference clips are rendered for the
same captions at the model's size; the Fréchet distance of two independent real renders ("fd_floor") is
reported beside "fd" so the number can be read at this n.

Prints a JSON object: model, schedule, n, adherence {shape, color, background, motion, speed, all},
adherence_seen / adherence_heldout (same keys, for the two parts of the prompt set), fd, fd_floor,
temporal, centroid_motion, seconds_per_video, tflops_per_video.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bench.metrics import adherence, evaluate_videos, frechet_distance
from bench.probe import AttributeProbe, load_probe
from world import ClipAttributes, caption, clip_rng, is_held_out, parse, render_batch, sample_attributes

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


def run_toybench(
    model,  # engine.models.WanModel
    prompts: Sequence[str],
    schedule: str | None = None,
    seed: int = 0,
    guidance: float | None = None,
    probe: AttributeProbe | None = None,
    size: tuple[int | None, int | None, int | None] = (None, None, None),
) -> dict:
    """Generate one video per prompt (seed + i) and score them; returns the JSON-ready result dict.

    size: (frames, height, width) overrides of the model's defaults (None keeps the default)."""
    from engine.pipeline import make_request, run

    probe = probe or load_probe()
    attributes = [parse(p) for p in prompts]
    videos, seconds, tflops = [], [], []
    request = None
    for i, prompt in enumerate(prompts):
        request = make_request(
            model,
            prompt,
            schedule=schedule,
            frames=size[0],
            height=size[1],
            width=size[2],
            guidance=guidance,
            seed=seed + i,
        )
        result = run(model, request)
        videos.append(torch.from_numpy(result.frames).permute(3, 0, 1, 2).float() / 127.5 - 1)
        seconds.append(result.total_seconds)
        tflops.append(result.total_tflops)
    generated = torch.stack(videos)  # (B, 3, F, H, W) in [-1, 1]
    g = request.geometry
    real = render_batch(attributes, seed + REFERENCE_SEED, g.frames, g.height, g.width)
    real_again = render_batch(attributes, seed + FLOOR_SEED, g.frames, g.height, g.width)
    scores = evaluate_videos(generated, attributes, probe, real)
    pred = probe.predict(generated)
    held = np.array([is_held_out(a) for a in attributes])
    floor = frechet_distance(probe.predict(real_again)["features"], probe.predict(real)["features"])
    return {
        "model": model.name,
        "schedule": request.schedule,
        "guidance": request.guidance,
        "frames": g.frames,
        "height": g.height,
        "width": g.width,
        "n": len(prompts),
        "n_heldout": int(held.sum()),
        "adherence": scores["adherence"],
        "adherence_seen": _subset_adherence(pred, attributes, ~held),
        "adherence_heldout": _subset_adherence(pred, attributes, held),
        "fd": scores["fd"],
        "fd_floor": floor,
        "temporal": scores["temporal"],
        "centroid_motion": scores["centroid_motion"],
        "seconds_per_video": float(np.mean(seconds)),
        "tflops_per_video": float(np.mean(tflops)),
    }


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
    result = run_toybench(model, prompts, args.schedule, args.seed, args.guidance, size=size)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
