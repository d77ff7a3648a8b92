"""Held-out accuracy of the attribute probe, per head, on single-object clips from seeds it never saw.

    python -m bench.eval_probe [--n 2000] [--seed 2000000011] [--size 128] [--frames 17] [--probe DIR]

The probe trains on clip seeds 0, 1, 2, ... (one per step); validation during training uses
VAL_SEED, the accuracy quoted in bench/README.md uses TEST_SEED and the CI gate uses CI_SEED.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bench.probe import HEADS, IGNORE, AttributeProbe, labels_for, load_probe
from world.dataset import clip_rng, sample_clip, to_tensor

VAL_SEED = 1_000_000_007
TEST_SEED = 2_000_000_011
CI_SEED = 3_000_000_019


def probe_accuracy(
    probe: AttributeProbe,
    seed: int,
    n: int,
    frames: int = 17,
    height: int = 128,
    width: int = 128,
    chunk: int = 128,
) -> dict[str, float]:
    """Fraction of clips whose main-object attribute each head reads correctly (speed: moving objects only),
    plus "all4" (shape, color, background and motion all right)."""
    correct = {k: 0 for k in HEADS} | {"all4": 0}
    counted = {k: 0 for k in HEADS} | {"all4": 0}
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        videos, attrs = _chunk(seed, start, m, frames, height, width)
        pred = probe.predict(videos)
        labels = labels_for(attrs)
        ok_all = torch.ones(m, dtype=torch.bool)
        for k in HEADS:
            valid = labels[k] != IGNORE
            hit = (pred[k] == labels[k]) & valid
            correct[k] += int(hit.sum())
            counted[k] += int(valid.sum())
            if k != "speed":
                ok_all &= hit
        correct["all4"] += int(ok_all.sum())
        counted["all4"] += m
    return {k: correct[k] / max(counted[k], 1) for k in correct}


def _chunk(seed: int, start: int, m: int, frames: int, height: int, width: int) -> tuple[torch.Tensor, list]:
    """Single-object clips start..start+m-1 of the evaluation set: clip i comes from clip_rng(seed, i),
    over every composition. Returns videos (m, 3, F, H, W) in [-1, 1] and their attributes."""
    clips = [
        sample_clip(clip_rng(seed, start + i), frames, height, width, "all", n_objects=1) for i in range(m)
    ]
    return to_tensor([c.video for c in clips]), [c.attributes for c in clips]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=TEST_SEED)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--probe", default=None, help="checkpoint folder (default assets/probe)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    probe = load_probe(args.probe) if args.probe else load_probe()
    t0 = time.time()
    acc = probe_accuracy(probe, args.seed, args.n, args.frames, args.size, args.size)
    print(
        json.dumps(
            {
                "n": args.n,
                "seed": args.seed,
                "frames": args.frames,
                "size": args.size,
                "accuracy": {k: round(v, 4) for k, v in acc.items()},
                "seconds": round(time.time() - t0, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
