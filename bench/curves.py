"""Learning curves of several training runs on one figure (from each run's curves.csv).

    python -m bench.curves runs/lane-a runs/lane-b --out bench/curves/base-recipes.png [--x train_tflops]

A trainer started with `eval_every=K` evaluates its EMA weights with ToyBench every K steps and appends
a row to RUN_DIR/curves.csv (trainers.curves). This plots adherence (shape, motion, colour, background,
all), the Fréchet distance (with the real-vs-real floor dashed) and the temporal coherence (main object
present in every frame, size stable) against training compute, one line per run, and prints each run's
last row as a markdown table. A run's label is its folder name, or `LABEL=RUN_DIR`.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

PANELS = (
    ("shape", "shape (%)"),
    ("motion", "motion (%)"),
    ("color", "colour (%)"),
    ("background", "background (%)"),
    ("all", "all attributes (%)"),
    ("fd", "Fréchet distance"),
    ("present_all_frames", "object in every frame (%)"),
    ("size_stable", "size stable (%)"),
)
PERCENT = {"shape", "motion", "color", "background", "all", "present_all_frames", "size_stable"}
X_LABELS = {"train_tflops": "training TFLOPs", "step": "step", "minutes": "minutes"}


def read_curve(run: str | Path) -> list[dict[str, float]]:
    """The rows of RUN_DIR/curves.csv (or of a csv file given directly) as floats, in step order."""
    path = Path(run)
    path = path / "curves.csv" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train with eval_every=K to write a learning curve")
    with path.open() as f:
        rows = [
            {k: float(v) if v not in ("", None) else math.nan for k, v in r.items()}
            for r in csv.DictReader(f)
        ]
    if not rows:
        raise ValueError(f"{path} has no rows yet")
    return sorted(rows, key=lambda r: r["step"])


def parse_run(spec: str) -> tuple[str, Path]:
    """`LABEL=RUN_DIR` or `RUN_DIR` (labelled by its folder name)."""
    label, sep, path = spec.partition("=")
    return (label, Path(path)) if sep else (Path(spec).name, Path(spec))


def last_rows_table(curves: dict[str, list[dict[str, float]]]) -> str:
    """Markdown table of every run's last point."""
    keys = (
        "step",
        "train_tflops",
        "shape",
        "motion",
        "color",
        "background",
        "all",
        "fd",
        "present_all_frames",
    )
    lines = ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for label, rows in curves.items():
        r = rows[-1]
        cells = [
            f"{100 * r[k]:.1f}" if k in PERCENT else f"{r[k]:.0f}" if k in ("step", "fd") else f"{r[k]:.3g}"
            for k in keys
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(curves: dict[str, list[dict[str, float]]], out: Path, x: str = "train_tflops") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 7), constrained_layout=True)
    for ax, (key, title) in zip(axes.flat, PANELS, strict=True):
        for i, (label, rows) in enumerate(curves.items()):
            xs = [r[x] for r in rows]
            scale = 100 if key in PERCENT else 1
            ax.plot(
                xs, [scale * r.get(key, math.nan) for r in rows], marker="o", ms=3, color=f"C{i}", label=label
            )
            if key == "fd":
                ax.plot(xs, [r["fd_floor"] for r in rows], ls="--", lw=0.8, color=f"C{i}")
        ax.set_title(title)
        ax.set_xlabel(X_LABELS.get(x, x))
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", help="RUN_DIR or LABEL=RUN_DIR (a folder with curves.csv)")
    parser.add_argument("--out", default="curves.png", help="figure to write (.png)")
    parser.add_argument("--x", default="train_tflops", choices=sorted(X_LABELS), help="x axis")
    args = parser.parse_args(argv)
    try:
        curves = {label: read_curve(path) for label, path in map(parse_run, args.runs)}
    except (OSError, ValueError) as err:
        parser.error(str(err))
    print(last_rows_table(curves))
    print(f"wrote {plot(curves, Path(args.out), args.x)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
