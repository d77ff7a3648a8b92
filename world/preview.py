"""Write a sample of clips to look at: one mp4 per clip, captions.txt and a contact sheet PNG.

    python -m world.preview --n 8 --out outputs/preview [--seed 0] [--frames 17] [--size 128]
                            [--split train|heldout|all] [--p-two 0.2]

The contact sheet has one row per clip: `--columns` frames evenly spaced in time, captioned below.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from world.dataset import Clip, clip_rng, sample_clip


def write_mp4(video: np.ndarray, path: str | Path, fps: int = 8) -> None:
    """uint8 (F, H, W, 3) -> H.264 mp4 (yuv420p, plays everywhere; H and W should be even)."""
    imageio.mimwrite(
        str(path),
        list(video),
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        output_params=["-crf", "18"],
    )


def contact_sheet(
    videos: list[np.ndarray], captions: list[str], columns: int = 6, scale: int = 1
) -> Image.Image:
    """One row per video: `columns` frames evenly spaced in time, the caption beneath. Returns RGB."""
    font = ImageFont.load_default()
    h, w = videos[0].shape[1] * scale, videos[0].shape[2] * scale
    pad, line_h = 4, 12
    wrap = max(20, (columns * (w + pad)) // 6)
    lines = [textwrap.wrap(c, wrap) or [""] for c in captions]
    rows_h = [h + pad + line_h * len(ls) + pad for ls in lines]
    sheet = Image.new("RGB", (columns * (w + pad) + pad, sum(rows_h) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = pad
    for video, text_lines, row_h in zip(videos, lines, rows_h, strict=True):
        idx = np.linspace(0, len(video) - 1, columns).round().astype(int)
        for j, f in enumerate(idx):
            frame = Image.fromarray(video[f]).resize((w, h), Image.NEAREST)
            sheet.paste(frame, (pad + j * (w + pad), y))
        for k, line in enumerate(text_lines):
            draw.text((pad, y + h + 2 + k * line_h), line, fill=(0, 0, 0), font=font)
        y += row_h
    return sheet


def write_preview(clips: list[Clip], out: str | Path, fps: int = 8, columns: int = 6) -> Path:
    """Write clip_XXX.mp4, captions.txt and contact_sheet.png under `out`; returns the sheet's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(clips):
        write_mp4(clip.video, out / f"clip_{i:03d}.mp4", fps=fps)
    (out / "captions.txt").write_text(
        "".join(f"clip_{i:03d}.mp4\t{c.caption}\n" for i, c in enumerate(clips))
    )
    sheet_path = out / "contact_sheet.png"
    contact_sheet([c.video for c in clips], [c.caption for c in clips], columns).save(sheet_path)
    return sheet_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=8, help="number of clips")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=128, help="height and width")
    parser.add_argument("--split", default="all", choices=["train", "heldout", "all"])
    parser.add_argument("--p-two", type=float, default=0.2, help="probability of a two-object clip")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--columns", type=int, default=6, help="frames per row in the contact sheet")
    args = parser.parse_args(argv)
    clips = [
        sample_clip(clip_rng(args.seed, i), args.frames, args.size, args.size, args.split, p_two=args.p_two)
        for i in range(args.n)
    ]
    sheet = write_preview(clips, args.out, fps=args.fps, columns=args.columns)
    for i, c in enumerate(clips):
        print(f"clip_{i:03d}.mp4  {c.caption}")
    print(f"contact sheet: {sheet}")


if __name__ == "__main__":
    main()
