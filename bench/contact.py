"""A contact sheet of what a model draws for the app's example prompts (to look at, next to the numbers).

    python -m bench.contact --model wan-tiny --schedule 0-0-50 --out outputs/contact-wan-tiny.png

One row per prompt (app.prompts.EXAMPLES, or --prompts-file, one caption per line), `--columns` frames
evenly spaced in time, the caption, model, schedule and seed beneath; a real render of the same caption
is added under each row with --real. Prompt i is generated with seed S + i, as in ToyBench.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.toybench import generate_one, read_prompts
from world import parse, render_batch
from world.preview import contact_sheet


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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from engine.models import load_model

    if args.prompts_file:
        prompts = read_prompts(args.prompts_file)
    else:  # the page's own examples: this sheet is what a visitor sees first
        from app.prompts import EXAMPLES as prompts
    model = load_model(args.model, device="cpu")
    videos, captions = [], []
    for i, prompt in enumerate(prompts):
        _, result = generate_one(model, prompt, args.schedule, args.seed + i)
        videos.append(result.frames)
        captions.append(f"{prompt}  [{model.name} {result.request.schedule}, seed {args.seed + i}]")
        if args.real:
            g = result.request.geometry
            real = render_batch([parse(prompt)], args.seed + i, g.frames, g.height, g.width)[0]
            videos.append(((real.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy())
            captions.append("real render of the caption above")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(videos, captions, columns=args.columns).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
