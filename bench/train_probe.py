"""Train the attribute probe on procedural clips drawn on the fly, for a fixed wall-clock budget.

    python -m bench.train_probe --max-minutes 55 --out assets/probe [--threads 1] [--batch-size 32]

Step k trains on single-object clips clip_rng(k, 0..B-1) over every composition (the probe must read
held-out compositions too), rendered at 128x128 every `--hires-every`-th step and at 64x64 otherwise
(the probe resamples everything to 17x64x64, so the cheap render covers most steps), then augmented.
The learning rate warms up and then follows a cosine over the time budget. Every `--eval-minutes` the
probe is scored on fixed validation clips (VAL_SEED) and saved (float16) to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.eval_probe import VAL_SEED, probe_accuracy
from bench.probe import HEADS, IGNORE, AttributeProbe, ProbeConfig, augment, labels_for
from world.dataset import clip_rng, sample_clip, to_tensor


def training_batch(step: int, batch_size: int, size: int) -> tuple[torch.Tensor, list]:
    """Single-object clips of step `step`: videos (B, 3, 17, size, size) in [-1, 1] and attributes."""
    clips = [sample_clip(clip_rng(step, i), 17, size, size, "all", n_objects=1) for i in range(batch_size)]
    return to_tensor([c.video for c in clips]), [c.attributes for c in clips]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="assets/probe")
    parser.add_argument("--max-minutes", type=float, default=55.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--hires-every", type=int, default=4, help="render at 128x128 every k-th step")
    parser.add_argument("--eval-minutes", type=float, default=5.0)
    parser.add_argument("--val-n", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and augmentation seed")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    probe = AttributeProbe(ProbeConfig())
    n_params = sum(p.numel() for p in probe.parameters())
    opt = torch.optim.AdamW(probe.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.max_minutes * 60
    command = "python -m bench.train_probe " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"probe: {n_params} parameters; budget {args.max_minutes} min; {command}", flush=True)

    t0 = time.time()
    last_eval = t0
    step = 0
    running: dict[str, float] = {}
    best: dict[str, float] = {}

    def evaluate_and_save(final: bool) -> None:
        probe.eval()
        acc = probe_accuracy(probe, VAL_SEED, args.val_n)
        probe.train()
        minutes = (time.time() - t0) / 60
        print(
            f"[eval] step {step} {minutes:.1f} min " + " ".join(f"{k} {v:.3f}" for k, v in acc.items()),
            flush=True,
        )
        best.update(acc)
        extra = {
            "training": {
                "command": command,
                "steps": step,
                "minutes": round(minutes, 1),
                "batch_size": args.batch_size,
                "val_seed": VAL_SEED,
                "val_n": args.val_n,
                "val_accuracy": {k: round(v, 4) for k, v in acc.items()},
                "final": final,
            }
        }
        probe.save(args.out, extra=extra)

    probe.train()
    while time.time() - t0 < budget:
        size = 128 if step % args.hires_every == 0 else 64
        videos, attrs = training_batch(step, args.batch_size, size)
        with torch.no_grad():
            x = augment(probe.preprocess(videos), gen)
        labels = labels_for(attrs)
        out = probe.forward_preprocessed(x)
        losses = {k: F.cross_entropy(out[k], labels[k], ignore_index=IGNORE) for k in HEADS}
        loss = sum(losses.values())
        frac = (time.time() - t0) / budget
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(probe.parameters(), 1.0)
        opt.step()
        for k, v in losses.items():
            running[k] = 0.98 * running.get(k, v.item()) + 0.02 * v.item()
        step += 1
        if step % 50 == 0:
            print(
                f"step {step} {(time.time() - t0) / 60:.1f} min lr {lr:.2e} "
                + " ".join(f"{k} {v:.3f}" for k, v in running.items()),
                flush=True,
            )
        if time.time() - last_eval > args.eval_minutes * 60:
            evaluate_and_save(final=False)
            last_eval = time.time()
    evaluate_and_save(final=True)
    size_kb = Path(args.out, "probe.safetensors").stat().st_size / 1024
    print(
        json.dumps(
            {
                "steps": step,
                "minutes": round((time.time() - t0) / 60, 1),
                "checkpoint_kb": round(size_kb),
                "val_accuracy": best,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
