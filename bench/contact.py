"""A contact sheet of what a model draws for the app's example prompts (to look at, next to the numbers).

    python -m bench.contact --model wan-tiny --schedule 0-0-50 --out outputs/contact-wan-tiny.png

One row per prompt (app.prompts.EXAMPLES, or --prompts-file, one caption per line), `--columns` frames
evenly spaced in time, the caption, model, schedule and seed beneath; a real render of the same caption
is added under each row with --real. Prompt i is generated with seed S + i, as in ToyBench.

Under each generated row is what ToyBench reads in it, so that the sheet is not judged by eye alone: the
probe's shape, color and motion of the main object and the motion named by the object's centroid track
(`bench.metrics.centroid_motion`, meant for one-object clips), each marked against the caption. --json
prints the same readings as one object per prompt.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.metrics import centroid_motion
from bench.probe import HEADS, load_probe
from bench.toybench import generate_one, read_prompts
from world import parse, render_batch
from world.preview import contact_sheet

READ = ("shape", "color", "motion")  # the main object's attributes the sheet names under each row


def reading(probe, video: torch.Tensor, prompt: str) -> dict:
    """What ToyBench reads in one video (3, F, H, W) in [-1, 1] against what its caption says: per
    attribute of the main object {"caption", "probe"}, and the centroid track's motion ("track")."""
    main = parse(prompt).main
    pred = probe.predict(video[None])
    out = {k: {"caption": getattr(main, k), "probe": HEADS[k][int(pred[k][0])]} for k in READ}
    out["motion"]["track"] = centroid_motion(video[None])[0]
    return out


def describe(read: dict) -> str:
    """One line: 'reads circle, red, left; track left' with '(not X)' after a reading that is not the
    caption's X (the default font has no check marks)."""

    def mark(value: str, truth: str) -> str:
        return value if value == truth else f"{value} (not {truth})"

    words = ", ".join(mark(read[k]["probe"], read[k]["caption"]) for k in READ)
    return f"reads {words}; track {mark(read['motion']['track'], read['motion']['caption'])}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="zoo name or folder (default: the app's default)")
    parser.add_argument("--schedule", default=None, help="default: the model's own")
    parser.add_argument("--prompts-file", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", type=int, default=9)
    parser.add_argument("--real", action="store_true", help="a real render of each caption under its row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("outputs/contact.png"))
    parser.add_argument("--json", action="store_true", help="print the readings as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from engine.models import load_model

    if args.prompts_file:
        prompts = read_prompts(args.prompts_file)
    else:  # the page's own examples: this sheet is what a visitor sees first
        from app.prompts import EXAMPLES as prompts
    model = load_model(args.model, device="cpu")
    probe = load_probe()
    videos, captions, readings = [], [], []
    for i, prompt in enumerate(prompts):
        video, result = generate_one(model, prompt, args.schedule, args.seed + i)
        read = reading(probe, video, prompt)
        readings.append({"prompt": prompt, "seed": args.seed + i, **read})
        videos.append(result.frames)
        where = f"[{model.name} {result.request.schedule}, seed {args.seed + i}]"
        captions.append(f"{prompt}  {where}  {describe(read)}")
        if args.real:
            g = result.request.geometry
            real = render_batch([parse(prompt)], args.seed + i, g.frames, g.height, g.width)[0]
            videos.append(((real.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy())
            captions.append("real render of the caption above")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(videos, captions, columns=args.columns).save(args.out)
    print(json.dumps({"out": str(args.out), "readings": readings}) if args.json else f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
