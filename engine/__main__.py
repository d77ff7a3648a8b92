"""Command line: `python -m engine generate …` and `python -m engine flops …` (see README)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from engine.flops import TERA, schedule_flops, size_from_name_or_folder
from engine.models import ModelLoadError, available_models, default_model_name, load_model
from engine.pipeline import generate, make_request
from engine.pyramid import stage_geometry
from engine.schedule import format_schedule, parse_schedule
from engine.transitions import DEFAULT_WAVELET
from engine.video import write_mp4


def _generate(args: argparse.Namespace) -> int:
    model = load_model(args.model, device=args.device)
    request = make_request(
        model,
        args.prompt,
        negative_prompt=args.negative_prompt,
        schedule=args.schedule,
        frames=args.frames,
        height=args.height,
        width=args.width,
        guidance=args.guidance,
        seed=args.seed,
        wavelet=args.wavelet,
        step_rule=args.step_rule,
        shift=args.shift,
    )
    bar = tqdm(
        total=sum(request.counts),
        desc=f"{request.schedule} seed {request.seed}",
        disable=args.json,
        unit="step",
    )
    result = None
    for event in generate(model, request):
        if event.kind == "step":
            bar.set_postfix(stage=event.stage, sigma=f"{event.sigma:.3f}")
            bar.update(1)
        elif event.kind == "done":
            result = event.result
    bar.close()
    out = Path(args.out or f"outputs/{request.schedule}-seed{request.seed}.mp4")
    write_mp4(result.frames, out, fps=model.card.fps)
    summary = {**result.summary(), "model": model.name, "out": str(out)}
    if args.json:
        print(json.dumps(summary))
    else:
        for row in summary["stages"]:
            f, h, w = row["pixels"]
            print(
                f"  stage {row['stage']}: {row['steps']:>3} steps at {f}×{h}×{w}, "
                f"σ {row['sigma_start']:.3f}→{row['sigma_end']:.3f}, {row['seconds']:.2f} s"
            )
        print(
            f"wrote {out} (seed {request.seed}, {result.total_seconds:.2f} s, "
            f"{result.total_tflops:.4g} TFLOPs)"
        )
        if result.unknown_words:
            print(f"warning: the model does not know these words: {', '.join(result.unknown_words)}")
    return 0


def _flops(args: argparse.Namespace) -> int:
    size = size_from_name_or_folder(args.model)
    if args.text_len:
        size = type(size)(size.dim, size.ffn_dim, size.num_layers, args.text_len)
    counts = parse_schedule(args.schedule, args.stages)
    geometry = stage_geometry(args.frames, args.height, args.width, num_stages=args.stages)
    per_stage = [f / TERA for f in schedule_flops(geometry, counts, size, cfg=args.cfg)]
    total = sum(per_stage)
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "schedule": format_schedule(counts),
                    "cfg": args.cfg,
                    "frames": args.frames,
                    "height": args.height,
                    "width": args.width,
                    "stages": [
                        {"stage": k, "steps": counts[k], "tokens": s.tokens, "tflops": per_stage[k]}
                        for k, s in enumerate(geometry.stages)
                    ],
                    "total_tflops": total,
                }
            )
        )
    else:
        for k, (s, t) in enumerate(zip(geometry.stages, per_stage)):
            print(f"  stage {k}: {counts[k]:>3} steps × {s.tokens} tokens = {t:,.1f} TFLOPs")
        print(f"{format_schedule(counts)}{' with CFG' if args.cfg else ''}: {total:,.1f} TFLOPs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Pyramidal sampling for Wan2.1-style models"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="text → mp4")
    g.add_argument("--prompt", required=True)
    g.add_argument("--negative-prompt", default=None)
    g.add_argument(
        "--model",
        default=None,
        help=f"zoo name ({', '.join(available_models())}), folder, or hub id; default {default_model_name()}",
    )
    g.add_argument(
        "--schedule", default=None, help="steps per stage, low → high, e.g. 20-20-10; 0-0-50 is plain"
    )
    g.add_argument("--frames", type=int, default=None)
    g.add_argument("--height", type=int, default=None)
    g.add_argument("--width", type=int, default=None)
    g.add_argument("--guidance", type=float, default=None)
    g.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    g.add_argument(
        "--wavelet", default=DEFAULT_WAVELET, help="haar, db2, sym4, … (orthogonal PyWavelets names)"
    )
    g.add_argument("--step-rule", choices=["euler", "x0"], default=None)
    g.add_argument("--shift", type=float, default=None)
    g.add_argument("--device", default=None)
    g.add_argument("--out", default=None)
    g.add_argument("--json", action="store_true", help="print one JSON object instead of progress")
    g.set_defaults(func=_generate)

    f = sub.add_parser("flops", help="TFLOPs of a schedule (DESIGN §8)")
    f.add_argument("--model", default="wan2.1-t2v-1.3b", help="wan2.1-t2v-1.3b, wan2.1-t2v-14b or a folder")
    f.add_argument("--frames", type=int, default=81)
    f.add_argument("--height", type=int, default=448)
    f.add_argument("--width", type=int, default=832)
    f.add_argument("--schedule", default="20-20-10")
    f.add_argument("--stages", type=int, default=3)
    f.add_argument("--text-len", type=int, default=None)
    f.add_argument("--cfg", action="store_true", help="count two forwards per step")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_flops)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
