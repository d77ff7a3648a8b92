"""ToyBench report: every shipped variant at its relevant schedules → bench/RESULTS.md and a plot.

    python -m bench.report [--n 32] [--seed 0] [--out bench/RESULTS.md] [--plot bench/quality_vs_compute.png]
                           [--models a,b] [--schedules a,b] [--frames F --height H --width W]
                           [--prompts-file FILE] [--threads T] [--device cpu] [--json FILE]

Models: the zoo's variants (engine.zoo.zoo_models()); random-tiny only when the zoo has none, or when
named in --models. Schedules per model: `relevant_schedules(card)` (override with --schedules).

Every model generates the same prompt set (prompt i with seed S + i, as in ToyBench). The schedules of one
model are interleaved prompt by prompt, after an untimed one-step warm-up of each, so the measured ratio
to the model's plain 0-0-50 run shares the machine's load with it. The FLOPs column is the engine's FLOPs
model (DESIGN §8) with classifier-free guidance counted as two forwards; its ratio stands beside the
measured one. Scoring is ToyBench's (`bench.toybench.score`): adherence per attribute and all-correct,
the Fréchet distance to real renders of the same captions with the real-vs-real floor at the same n.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.toybench import (
    Generation,
    add_to,
    default_prompts,
    generate_one,
    read_prompts,
    reference_clips,
    score,
)
from engine.flow import PLAIN_BASELINE
from engine.schedule import format_schedule, parse_schedule
from engine.zoo import RANDOM_TINY, REPO_ROOT, ModelCard, ModelLoadError, zoo_models

BASELINE = PLAIN_BASELINE  # the plain sampler at full length: what the measured ratios are relative to
BENCH_DIR = Path(__file__).resolve().parent
ADHERENCE_COLUMNS = ("shape", "color", "background", "motion", "all")


# ------------------------------------------------------------------------------------- what to run


def relevant_schedules(card: ModelCard) -> list[str]:
    """The schedules a model is reported at, chosen from its card (later variants add a rule here).

    - distilled few-step generator (step_rule "x0"): pyramidal and plain few-step schedules;
    - finetuned for the pyramid: the paper's pyramidal schedules, the plain 0-0-50 baseline, and 2-2-1
      (the distilled generators' schedule without distillation: what distillation has to beat);
    - plain model: 0-0-50, 0-0-20, and 20-20-10 (pyramidal sampling without the finetune: what it buys).
    The card's own default schedule is added when missing; schedules that do not fit the card's number
    of stages are left out.
    """
    if card.step_rule == "x0":
        wanted = ["2-2-1", "1-1-1", "2-2-2", "0-0-4", "0-0-2", "0-0-1"]
    elif card.pyramidal:
        wanted = [BASELINE, "20-20-10", "10-10-5", "4-4-2", "2-2-1"]
    else:
        wanted = [BASELINE, "0-0-20", "20-20-10"]
    wanted.append(card.schedule)
    out = []
    for spec in wanted:
        try:
            label = format_schedule(parse_schedule(spec, card.num_stages))
        except ValueError:
            continue
        if label not in out:
            out.append(label)
    return out


def report_models(names: Sequence[str] | None = None) -> list[str]:
    """The named models, else the zoo's variants, else random-tiny."""
    if names:
        return list(names)
    return zoo_models() or [RANDOM_TINY]


def warm_up_schedule(schedule: str, num_stages: int = 3) -> str:
    """One step at every active stage: visits every shape and code path of `schedule` cheaply."""
    return format_schedule([min(c, 1) for c in parse_schedule(schedule, num_stages)])


# -------------------------------------------------------------------------------------- measuring


def measure_model(
    name: str,
    prompts: Sequence[str],
    seed: int = 0,
    schedules: Sequence[str] | None = None,
    size: tuple[int | None, int | None, int | None] = (None, None, None),
    device: str = "cpu",
    probe=None,
    log=print,
) -> list[dict]:
    """ToyBench rows (one per schedule) for one model, its schedules interleaved prompt by prompt."""
    from engine.models import load_model

    model = load_model(name, device=device)
    card = model.card
    if schedules is None:
        schedules = relevant_schedules(card)
    else:
        schedules = list(
            dict.fromkeys(format_schedule(parse_schedule(s, card.num_stages)) for s in schedules)
        )
    log(f"{model.name}: schedules {', '.join(schedules)}; warming up")
    for s in schedules:
        generate_one(model, prompts[0], warm_up_schedule(s, card.num_stages), seed, size=size)
    generations: dict[str, Generation] = {}
    for i, prompt in enumerate(prompts):
        # Rotate the order so no schedule always runs first (or right after a particular other one).
        for s in schedules[i % len(schedules) :] + schedules[: i % len(schedules)]:
            video, result = generate_one(model, prompt, s, seed + i, size=size)
            generations.setdefault(s, Generation(model.name, result.request))
            add_to(generations[s], video, result)
        log(f"{model.name}: prompt {i + 1}/{len(prompts)} generated at every schedule")
    from world import parse

    g = generations[schedules[0]].request.geometry
    reference = reference_clips([parse(p) for p in prompts], seed, g.frames, g.height, g.width)
    rows = []
    for s in schedules:
        row = score(generations[s], prompts, seed, probe, reference)
        row.update(step_rule=card.step_rule, pyramidal=card.pyramidal, num_stages=card.num_stages)
        rows.append(row)
    return rows


def add_ratios(rows: list[dict]) -> None:
    """Seconds and TFLOPs of each row relative to the 0-0-50 row of its model (in place).

    A model without a 0-0-50 row (a distilled generator) is compared with the first plain (not
    distilled, preferably not pyramid-finetuned) model's 0-0-50 row of the same report; the row's
    "baseline" names which run it was divided by (None: no ratio)."""
    baselines = [r for r in rows if r["schedule"] == BASELINE]
    own = {}
    for r in baselines:
        own.setdefault(r["model"], r)
    plain = sorted((r for r in baselines if r["step_rule"] != "x0"), key=lambda r: r["pyramidal"])
    for r in rows:
        base = own.get(r["model"]) or (plain[0] if plain else None)
        r["baseline"] = f"{base['model']} {BASELINE}" if base else None
        r["seconds_ratio"] = r["seconds_per_video"] / base["seconds_per_video"] if base else None
        sampling, base_sampling = (
            r.get("sampling_seconds_per_video"),
            (base or {}).get("sampling_seconds_per_video"),
        )
        r["sampling_ratio"] = sampling / base_sampling if sampling and base_sampling else None
        r["tflops_ratio"] = r["tflops_per_video"] / base["tflops_per_video"] if base else None


# ---------------------------------------------------------------------------------------- writing


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}g}"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:#.3g}"


def _pct(x: float | None) -> str:
    return "—" if x is None or x != x else f"{100 * x:.1f}"


TABLE_HEADER = (
    "model",
    "schedule",
    "shared noise",
    "TFLOPs / video",
    "FLOPs ratio",
    "s / video",
    "measured ratio",
    "denoising s",
    "denoising ratio",
    *ADHERENCE_COLUMNS,
    "all, held-out",
    "FD",
    "FD floor",
    "in every frame",
    "size stable",
    "chunk motion",
    "n",
)


def _other_baseline(row: dict) -> bool:
    """True when the row's ratios are to another model's 0-0-50 run."""
    return bool(row["baseline"]) and row["baseline"] != f"{row['model']} {BASELINE}"


def table_rows(rows: Sequence[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        mark = " †" if _other_baseline(r) else ""
        held = r["adherence_heldout"]
        out.append(
            [
                r["model"],
                r["schedule"],
                f"{r.get('shared_noise', 0.0):g}",
                _num(r["tflops_per_video"]),
                _ratio(r["tflops_ratio"]) + mark,
                _num(r["seconds_per_video"]),
                _ratio(r["seconds_ratio"]) + mark,
                _num(r.get("sampling_seconds_per_video")),
                _ratio(r.get("sampling_ratio")) + (mark if r.get("sampling_ratio") else ""),
                *(_pct(r["adherence"][k]) for k in ADHERENCE_COLUMNS),
                _pct(held["all"] if held else None),
                f"{r['fd']:.1f}",
                f"{r['fd_floor']:.1f}",
                _pct(r["coherence"]["present_all_frames"]),
                _pct(r["coherence"]["size_stable"]),
                _num(r["coherence"]["within_chunk_ratio"], 2),
                str(r["n"]),
            ]
        )
    return out


def machine_line(device: str) -> str:
    import torch

    try:
        load = f", load average at start {os.getloadavg()[0]:.2f}"
    except OSError:
        load = ""
    return (
        f"{platform.platform()} ({platform.machine()}), {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"device {device}{load}"
    )


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" with uncommitted changes" if dirty else "")


def write_markdown(rows: Sequence[dict], path: Path, meta: dict, plot: Path | None) -> None:
    r0 = rows[0]
    lines = [
        "# ToyBench results",
        "",
        f"Produced by `{meta['command']}` on {meta['date']} (commit {meta['revision']}).",
        "",
        f"Machine: {meta['machine']}.",
        "",
        f"{r0['n']} prompts ({r0['n_heldout']} of held-out compositions), seed {meta['seed']} (prompt i "
        f"with seed {meta['seed']} + i), {r0['frames']} frames of {r0['height']}×{r0['width']} pixels, "
        f"each model at its card's guidance and shared noise.",
        "",
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|" + "|".join("---" for _ in TABLE_HEADER) + "|",
        *("| " + " | ".join(cells) + " |" for cells in table_rows(rows)),
        "",
        "- **shared noise**: the share of the noise common to all latent frames (the card's; DESIGN §6b).",
        "- **TFLOPs / video**: the engine's FLOPs model (DESIGN §8), classifier-free guidance counted as "
        "two forwards; **FLOPs ratio**: to the same model's 0-0-50 row.",
        "- **s / video**: measured wall time of one generation (prompt encoding, sampling, VAE decode), "
        "mean over the prompts; **measured ratio**: to the same model's 0-0-50 run, measured in this "
        "process with the schedules interleaved prompt by prompt after an untimed warm-up.",
        "- **denoising s**: the part of s / video spent in the sampler (transformer steps and the "
        "pyramid's jumps; no prompt encoding, no VAE decode); **denoising ratio**: the same ratio for it.",
        "- **shape … all**: ToyBench adherence in % (the probe's reading vs the caption; `all` = shape, "
        "color, background and motion all right); **all, held-out**: `all` on the held-out compositions.",
        "- **FD**: Fréchet distance of probe features to real renders of the same captions; **FD floor**: "
        "two independent real renders at the same n (FD is biased upwards at small n).",
        "- **in every frame**: % of videos whose main object is visible in every frame; **size stable**: % "
        "of videos not captioned grow/shrink whose object area varies by at most 1.5×; **chunk motion**: "
        "mean frame-to-frame change inside each 4-frame latent chunk, generated / real (1 = as real; 0 = "
        "each latent frame decodes to one repeated picture; the VAE round trip alone scores about 0.6).",
    ]
    others = sorted({r["baseline"] for r in rows if _other_baseline(r)})
    for b in others:
        lines.append(f"- †: relative to {b} (the model has no 0-0-50 run of its own).")
    if plot is not None:
        rel = os.path.relpath(plot.resolve(), path.resolve().parent)
        lines += ["", f"![all-attributes adherence vs compute]({Path(rel).as_posix()})"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_plot(rows: Sequence[dict], path: Path, title: str = "") -> None:
    """All-attributes adherence against TFLOPs and against seconds per video (both log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from engine.schedule import is_plain

    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for ax, key, label in (
        (axes[0], "tflops_per_video", "TFLOPs per video (FLOPs model, CFG included)"),
        (axes[1], "seconds_per_video", "seconds per video (measured)"),
    ):
        for m in models:
            mine = sorted((r for r in rows if r["model"] == m), key=lambda r: r[key])
            for j, r in enumerate(mine):
                x, y = r[key], 100 * r["adherence"]["all"]
                plain = is_plain(parse_schedule(r["schedule"], r["num_stages"]))
                ax.plot([x], [y], "o" if plain else "^", color=colors[m], ms=7, alpha=0.85)
                # Alternate the labels above and below so neighbours on one model's row stay readable.
                ax.annotate(
                    r["schedule"],
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 6 if j % 2 == 0 else -12),
                    fontsize=8,
                    color=colors[m],
                )
        ax.set_xscale("log")
        # Plain numbers on the decades; on the minor ticks too when the data spans less than a decade.
        values = [r[key] for r in rows]
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        narrow = max(values) < 10 * min(values)
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.2g}") if narrow else NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("all attributes correct (%)")
        ax.set_ylim(-5, 105)
        ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=colors[m], marker="s", ls="", label=m) for m in models]
    handles += [
        Line2D([], [], color="gray", marker="o", ls="", label="plain schedule"),
        Line2D([], [], color="gray", marker="^", ls="", label="pyramidal schedule"),
    ]
    axes[0].legend(handles=handles, fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- CLI


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--n", type=int, default=32, help="size of ToyBench's default prompt set")
    source.add_argument("--prompts-file", default=None, help="one caption per line instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "RESULTS.md")
    parser.add_argument("--plot", type=Path, default=BENCH_DIR / "quality_vs_compute.png")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw rows here")
    parser.add_argument("--models", type=_csv, default=None, help="comma-separated (default: the zoo)")
    parser.add_argument(
        "--schedules", type=_csv, default=None, help="comma-separated, for every model (default: per card)"
    )
    parser.add_argument("--frames", type=int, default=None, help="default: each model's")
    parser.add_argument("--height", type=int, default=None, help="default: each model's")
    parser.add_argument("--width", type=int, default=None, help="default: each model's")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n < 2 and not args.prompts_file:
        print("error: --n must be at least 2 (the Fréchet distance needs 2 clips)", file=sys.stderr)
        return 2
    try:
        prompts = read_prompts(args.prompts_file) if args.prompts_file else default_prompts(args.n, args.seed)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    meta = {
        "command": "python -m bench.report" + (" " + shlex.join(argv) if argv else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_line(args.device),
        "revision": git_revision(),
        "seed": args.seed,
    }
    from bench.probe import load_probe

    probe = load_probe()
    size = (args.frames, args.height, args.width)

    def log(message: str) -> None:
        print(f"[report] {message}", file=sys.stderr, flush=True)

    rows: list[dict] = []
    for name in report_models(args.models):
        try:
            rows += measure_model(name, prompts, args.seed, args.schedules, size, args.device, probe, log)
        except (ModelLoadError, ValueError) as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            return 2
    add_ratios(rows)
    write_plot(rows, args.plot, f"ToyBench, n = {len(prompts)}: quality vs compute")
    write_markdown(rows, args.out, meta, args.plot)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print("\n".join("\t".join(cells) for cells in [list(TABLE_HEADER), *table_rows(rows)]))
    log(f"wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
