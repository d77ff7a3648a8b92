"""What a visitor gets from each example prompt: the share of seeds on which it is drawn as captioned.

    python -m bench.examples --model pyramidal-wan-tiny --schedule 20-20-10 --seeds 32

ToyBench's default set mixes hundreds of captions, one seed each; a visitor of the app types one prompt
and tries a few seeds. This runs each of the page's example prompts (app.prompts.EXAMPLES, or
--prompts-file) on `--seeds` seeds (S, S + 1, ...) and scores each prompt's videos with ToyBench: per
prompt the share of videos whose main object reads as captioned (shape, color, background, motion and
all four at once), the share with the object in every frame, and the FD against real renders of the same
caption. Prints a markdown table, or one JSON object with --json.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from bench.probe import load_probe
from bench.toybench import evaluate, read_prompts

COLUMNS = ("shape", "color", "background", "motion", "all")


def per_prompt(model, schedule: str | None, prompts: list[str], seeds: int, seed: int = 0) -> list[dict]:
    """One ToyBench result per prompt, over its `seeds` videos (seeds seed … seed + seeds − 1)."""
    probe = load_probe()
    results = []
    for prompt in prompts:
        result = evaluate(model, schedule, [prompt] * seeds, seed, probe=probe)
        results.append(
            {
                "prompt": prompt,
                **{k: result["adherence"][k] for k in COLUMNS},
                "present_all_frames": result["coherence"]["present_all_frames"],
                "fd": result["fd"],
                "fd_floor": result["fd_floor"],
            }
        )
    return results


def table(results: list[dict]) -> str:
    head = "| prompt | " + " | ".join(COLUMNS) + " | object in every frame | FD (floor) |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for r in results:
        rates = " | ".join(f"{100 * r[k]:.0f}" for k in (*COLUMNS, "present_all_frames"))
        lines.append(f"| {r['prompt']} | {rates} | {r['fd']:.0f} ({r['fd_floor']:.0f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="zoo name or folder (default: the app's default)")
    parser.add_argument("--schedule", default=None, help="default: the model's own")
    parser.add_argument("--prompts-file", default=None, help="default: the app's example prompts")
    parser.add_argument("--seeds", type=int, default=16, help="videos per prompt (at least 2)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        print(f"error: --seeds must be at least 2 (FD needs two videos), got {args.seeds}", file=sys.stderr)
        return 2
    try:
        if args.prompts_file:
            prompts = read_prompts(args.prompts_file)
        else:
            from app.prompts import EXAMPLES as prompts
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)

    from engine.models import load_model

    model = load_model(args.model, device="cpu")
    results = per_prompt(model, args.schedule, list(prompts), args.seeds, args.seed)
    if args.json:
        summary = {"model": model.name, "schedule": args.schedule, "seeds": args.seeds}
        print(json.dumps({**summary, "prompts": results}))
    else:
        last = args.seed + args.seeds - 1
        print(f"{model.name}, schedule {args.schedule or 'default'}, seeds {args.seed}–{last}")
        print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
