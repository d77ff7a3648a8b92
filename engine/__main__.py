"""Command line: `python -m engine generate …` and `python -m engine flops …` (see README).

Exit codes: 0 done, 2 a usage error (a bad value, a model that does not exist, a size over the budget;
one line on stderr, checked before any model is loaded where possible), 1 a failure while running (one
line, e.g. the disk filled while writing the video).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from tqdm import tqdm

from engine.flops import TERA, schedule_flops, size_from_name_or_folder
from engine.limits import BUDGET_ENV, BUDGETS, MAX_SEED, MAX_TFLOPS_ENV, host_budget
from engine.pyramid import stage_geometry
from engine.schedule import format_schedule, parse_schedule, steps_label
from engine.transitions import DEFAULT_WAVELET
from engine.zoo import ModelLoadError, available_models, default_model_name


class UsageError(ValueError):
    """A value the user typed is not usable (exit code 2)."""


def whole(text: str) -> int:
    """argparse type: a whole number written as one ("17", not "17.0", "1e3" or "nan")."""
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def finite(text: str) -> float:
    """argparse type: a finite real number (not nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def check_device(name: str | None) -> str | None:
    """The torch device to load on, refused before loading when it is unknown or absent on this host."""
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise UsageError(f"--device {name}: this machine has no CUDA GPU; use --device cpu")
        if device.index is not None and device.index >= count:
            raise UsageError(
                f"--device {name}: this machine has {count} CUDA GPU(s) (cuda:0 … cuda:{count - 1})"
            )
    elif device.type != "cpu":
        raise UsageError(f"--device {name}: only cpu and cuda are supported")
    return str(device)


def check_out(out: str | None) -> Path | None:
    """--out must name a new or replaceable .mp4 file in a folder this user can write (or create)."""
    if out is None:
        return None
    path = Path(out).expanduser()
    if path.suffix.lower() != ".mp4":
        raise UsageError(f"--out {out!r} must end in .mp4 (the video is H.264 mp4)")
    if path.is_dir():
        raise UsageError(f"--out {out!r} is a folder; give a file name such as {path / 'video.mp4'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"--out {out!r} exists and is not writable")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folder is created when the video is written
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out!r}: cannot write into {str(folder)!r}")
    return path


def _generate(args: argparse.Namespace) -> int:
    # imported here: diffusers and transformers take seconds to import, and `flops` needs neither
    from engine.memory import MemoryMode
    from engine.models import default_device, load_model
    from engine.pipeline import generate, make_request
    from engine.video import write_mp4

    out = check_out(args.out)
    device = check_device(args.device)
    on_gpu = (device or str(default_device())).startswith("cuda")
    budget = host_budget(args.budget, args.max_tflops, on_gpu=on_gpu)
    memory = MemoryMode(args.offload, args.text_encoder_cpu, args.vae_tiling, args.vae_slicing)
    model = load_model(args.model, device=device, memory=memory, compile=args.compile)
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
        budget=budget,
        shared_noise=args.shared_noise,
    )
    estimate = model.estimate_peak(request)
    if not args.json:
        print(
            f"estimated peak {model.device.type} memory: {estimate.peak_gb:.3g} GB (text "
            f"{estimate.text_gb:.3g}, sampling {estimate.transformer_gb:.3g}, "
            f"decoding {estimate.decode_gb:.3g}; "
            f"offload {memory.offload}{', text encoder on CPU' if memory.text_encoder_cpu else ''}"
            f"{', tiled VAE' if memory.vae_tiling else ''})",
            flush=True,
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
    out = out or Path(f"outputs/{request.schedule}-seed{request.seed}.mp4")
    write_mp4(result.frames, out, fps=model.card.fps)
    summary = {
        **result.summary(),
        "model": model.name,
        "out": str(out),
        "memory_estimate_gb": estimate.as_dict(),
        "offload": memory.offload,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for row in summary["stages"]:
            f, h, w = row["pixels"]
            print(
                f"  stage {row['stage']}: {steps_label(row['steps']):>9} at {f}×{h}×{w}, "
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
    if not 1 <= args.stages <= 6:
        raise ValueError(f"--stages must be between 1 and 6, got {args.stages}")
    if args.text_len is not None and args.text_len < 1:
        raise ValueError(f"--text-len must be at least 1, got {args.text_len}")
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


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit code 2) instead of the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m engine", description="Pyramidal sampling for Wan2.1-style models")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    g = sub.add_parser(
        "generate",
        help="text → mp4",
        description="Text → H.264 mp4. Empty options take the model card's defaults.",
        epilog=f"exit codes: 0 done, 2 bad input, 1 failure while running. Limits per request: {_limits()}.",
    )
    g.add_argument("--prompt", required=True, help="what the video shows (at most 200 words)")
    g.add_argument("--negative-prompt", default=None, help="default: the model card's")
    g.add_argument(
        "--model",
        default=None,
        help=f"zoo name ({', '.join(available_models())}), folder, or hub id; default {default_model_name()}",
    )
    g.add_argument(
        "--schedule", default=None, help="steps per stage, low → high, e.g. 20-20-10; 0-0-50 is plain"
    )
    g.add_argument("--frames", type=whole, default=None, help="frame count, 16k+1 for 3 stages (17, 33, …)")
    g.add_argument("--height", type=whole, default=None, help="pixels, a multiple of 64 for 3 stages")
    g.add_argument("--width", type=whole, default=None, help="pixels, a multiple of 64 for 3 stages")
    g.add_argument("--guidance", type=finite, default=None, help="classifier-free guidance, 0–30; 1 = none")
    g.add_argument("--seed", type=whole, default=None, help=f"0 … {MAX_SEED}; default: random (printed)")
    g.add_argument(
        "--wavelet", default=DEFAULT_WAVELET, help="haar, db2, sym4, … (orthogonal PyWavelets names)"
    )
    g.add_argument(
        "--step-rule",
        choices=["euler", "x0"],
        default=None,
        help="euler for diffusion models, x0 for few-step distilled ones; default: the card's",
    )
    g.add_argument("--shift", type=finite, default=None, help="timestep shift > 0; default: the model's")
    g.add_argument(
        "--shared-noise",
        type=finite,
        default=None,
        help="share of the starting noise common to all latent frames, 0 ≤ s < 1; default: the card's",
    )
    g.add_argument("--device", default=None, help="cpu, cuda or cuda:N; default cuda when present, else cpu")
    g.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default=None,
        help=f"per-request size and compute limits; default ${BUDGET_ENV}, else gpu on CUDA, else cpu",
    )
    g.add_argument(
        "--max-tflops",
        type=finite,
        default=None,
        help=f"override the budget's compute limit (default ${MAX_TFLOPS_ENV}, else the budget's)",
    )
    g.add_argument("--out", default=None, help="the .mp4 to write; default outputs/<schedule>-seed<seed>.mp4")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of progress")
    g.add_argument(
        "--offload",
        choices=["none", "model", "sequential"],
        default="none",
        help="accelerate CPU offload hooks: model (one component on the device at a time) or sequential "
        "(one layer at a time; least memory, slowest)",
    )
    g.add_argument("--text-encoder-cpu", action="store_true", help="run the text encoder on the CPU")
    g.add_argument("--vae-tiling", action="store_true", help="decode in spatial tiles (diffusers VAE tiling)")
    g.add_argument("--vae-slicing", action="store_true", help="decode one video of a batch at a time")
    g.add_argument(
        "--compile", action="store_true", help="torch.compile the transformer's repeated block (regional)"
    )
    g.set_defaults(func=_generate)

    f = sub.add_parser(
        "flops",
        help="TFLOPs of a schedule",
        description="Transformer TFLOPs of a schedule, by the paper's per-forward formula (engine/flops.py).",
    )
    f.add_argument("--model", default="wan2.1-t2v-1.3b", help="wan2.1-t2v-1.3b, wan2.1-t2v-14b or a folder")
    f.add_argument("--frames", type=whole, default=81, help="frame count (default 81)")
    f.add_argument("--height", type=whole, default=448, help="pixels (default 448)")
    f.add_argument("--width", type=whole, default=832, help="pixels (default 832)")
    f.add_argument("--schedule", default="20-20-10", help="steps per stage, low → high (default 20-20-10)")
    f.add_argument("--stages", type=whole, default=3, help="pyramid stages (default 3)")
    f.add_argument("--text-len", type=whole, default=None, help="text tokens (default: the model's, 512)")
    f.add_argument("--cfg", action="store_true", help="count two forwards per step")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(func=_flops)
    return parser


def _limits() -> str:
    return "; ".join(
        f"{b.kind}: ≤ {b.max_frames} frames, ≤ {b.max_side} px a side, ≤ {b.max_tflops:g} TFLOPs"
        for b in BUDGETS.values()
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, ModelLoadError) as err:  # the user's input: a usage error
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, MemoryError, RuntimeError) as err:  # the run failed (disk, memory, device)
        print(f"error: {type(err).__name__}: {_first_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 1


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else "no message"


if __name__ == "__main__":
    sys.exit(main())
