"""The Learn tab: σ and resolution over the steps of a schedule, one renoising jump made visible, and the
paper's compute table recomputed live by the engine's FLOPs model."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
from PIL import Image

from app.paper import PAPER_MODEL, PAPER_SCHEDULES, PAPER_SIZE
from engine.flops import KNOWN_SIZES, TERA, schedule_flops
from engine.flow import plain_counts
from engine.pyramid import jump_sigma, stage_geometry
from engine.schedule import format_schedule, parse_schedule, schedule_sigmas
from engine.transitions import downsample, renoise_jump, upsample

DISPLAY = 256  # pixels per side of every jump panel


# --- σ and resolution over the steps --------------------------------------------------------------------


def sigma_curve(
    schedule: str,
    shift: float = 1.0,
    frames: int = PAPER_SIZE[0],
    height: int = PAPER_SIZE[1],
    width: int = PAPER_SIZE[2],
    num_stages: int = 3,
) -> pd.DataFrame:
    """One row per σ grid point: global step, σ, stage, tokens and latent size.

    Each stage contributes its steps + 1 grid points, so a jump shows as two points at the same step: the
    end of a stage (σ_end) and the start of the next one, renoised upwards to s = √N·e/(1 − e + √N·e).
    """
    counts = parse_schedule(schedule, num_stages)
    geometry = stage_geometry(frames, height, width, num_stages=num_stages)
    rows, step = [], 0
    for stage, grid in zip(geometry.stages, schedule_sigmas(geometry, counts, shift)):
        if grid is None:
            continue
        _, t, h, w = stage.latent_shape
        for i, sigma in enumerate(grid.tolist()):
            rows.append(
                {
                    "step": step + i,
                    "sigma": round(sigma, 5),
                    "stage": f"stage {stage.index}",
                    "tokens": stage.tokens,
                    "latent": f"{t}×{h}×{w}",
                }
            )
        step += len(grid) - 1
    return pd.DataFrame(rows)


# --- one renoising jump -----------------------------------------------------------------------------------


def demo_image(size: int = 64) -> torch.Tensor:
    """A small test picture (1, 3, 1, size, size) in [-1, 1]: a gradient, a disc and a thin-edged square,
    i.e. smooth areas and sharp edges, the high frequencies a low stage cannot hold."""
    v, u = np.mgrid[0:size, 0:size] / (size - 1)
    img = np.stack([0.1 + 0.3 * u, 0.15 + 0.2 * v, 0.45 - 0.25 * u], axis=-1)
    disc = (u - 0.35) ** 2 + (v - 0.4) ** 2 < 0.2**2
    img[disc] = (0.95, 0.2, 0.15)
    square = (np.abs(u - 0.72) < 0.16) & (np.abs(v - 0.7) < 0.16)
    edge = square & ~((np.abs(u - 0.72) < 0.12) & (np.abs(v - 0.7) < 0.12))
    img[edge] = (1.0, 1.0, 1.0)
    return torch.from_numpy(img * 2 - 1).float().permute(2, 0, 1)[None, :, None]


def _to_rgb(x: torch.Tensor, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """(1, 3, 1, H, W) → (DISPLAY, DISPLAY, 3) uint8, enlarged with nearest so pixels stay visible."""
    img = ((x[0, :, 0].permute(1, 2, 0).clamp(lo, hi) - lo) / (hi - lo) * 255).round().byte().numpy()
    return np.asarray(Image.fromarray(img).resize((DISPLAY, DISPLAY), Image.Resampling.NEAREST))


def jump_panels(sigma_end: float = 1 / 3, wavelet: str = "haar", seed: int = 0) -> tuple[list, str]:
    """Panels (image, caption) and a Markdown note for one jump of the test picture from 32² to 64².

    The image stands in for a latent: 3 channels, one frame, so each 2×2 block has N = 4 elements.
    """
    if not 0.0 < sigma_end < 1.0:
        raise ValueError(f"the stage's end noise level must be between 0 and 1, got {sigma_end}")
    gen = torch.Generator().manual_seed(int(seed))
    y = demo_image()
    y_low = downsample(y, wavelet, temporal=False)
    e = float(sigma_end)
    x_low = (1 - e) * y_low + e * torch.randn(y_low.shape, generator=gen)
    x_new, s = renoise_jump(x_low, e, gen, wavelet, temporal=False)
    alpha = (1 - s) / (1 - e)
    upsampled = alpha * upsample(x_low, wavelet, temporal=False)
    added = x_new - upsampled
    target = (1 - s) * upsample(y_low, wavelet, temporal=False)  # the training start point's signal
    noise = x_new - target
    fresh = target + s * torch.randn(y.shape, generator=gen)
    band = 4 * s  # ±2σ of the noise fills the grey range of the noise panels
    panels = [
        (_to_rgb(y), "clean picture y (64×64): what full resolution can hold"),
        (_to_rgb(x_low), f"end of the low stage: (1−e)·R↓y + e·ε at 32×32, e = {e:.3f}"),
        (_to_rgb(upsampled), f"α·R↑(x) (α = {alpha:.3f}): upsampled, noise only in the 2×2 block means"),
        (
            _to_rgb(added, -band / 2, band / 2),
            "added detail-band noise s·(z − blockmean z): zero mean in every block",
        ),
        (_to_rgb(x_new), f"after the jump: the next stage starts here at σ = s = {s:.3f}"),
        (_to_rgb(fresh), "a training start point (1−s)·R↑R↓y + s·ε: same distribution"),
    ]
    block_means = added[0, :, 0].unfold(1, 2, 2).unfold(2, 2, 2).mean(dim=(-1, -2))
    note = (
        f"**Jump at e = {e:.3f}** with N = 4 (2×2 spatial blocks): s = 2e/(1+e) = **{s:.4f}** "
        f"(engine: {jump_sigma(e, 4):.4f}), α = (1−s)/(1−e) = **{alpha:.4f}**.\n\n"
        f"Measured on this draw: noise around the training signal has std **{noise.std():.4f}** (target s = "
        f"{s:.4f}); the added noise has std {added.std():.4f} (target s·√(3/4) = {s * 0.75**0.5:.4f}) and "
        f"its 2×2 block means are {block_means.abs().max():.1e} at most: it lives only in the detail bands, "
        f"the upsampled low-resolution noise already fills the block means with the right variance."
    )
    return panels, note


# --- compute table --------------------------------------------------------------------------------------

_CFG = re.compile(r"[+(]*\s*\bcfg\b\s*\)?", re.IGNORECASE)


def parse_schedule_list(spec: str) -> list[tuple[str, bool]]:
    """ "0-0-50 cfg, 20-20-10 cfg, 0-0-4" → [("0-0-50", True), ("20-20-10", True), ("0-0-4", False)]."""
    items = [item.strip() for item in re.split(r"[,;\n]", spec or "") if item.strip()]
    if not items:
        raise ValueError(
            "type one or more schedules separated by commas, e.g. '0-0-50 cfg, 20-20-10 cfg, 2-2-1'"
        )
    return [(_CFG.sub("", item).strip(), bool(_CFG.search(item))) for item in items]


def compute_table(
    spec: str = PAPER_SCHEDULES,
    model: str = PAPER_MODEL,
    frames: int = PAPER_SIZE[0],
    height: int = PAPER_SIZE[1],
    width: int = PAPER_SIZE[2],
) -> tuple[str, list[dict]]:
    """Markdown table (and its rows) of TFLOPs per stage and in total for each schedule, relative to the
    plain 50-step sampler with CFG (the paper's Table 1 reference)."""
    if model not in KNOWN_SIZES:
        raise ValueError(f"unknown model size {model!r}; choose one of {', '.join(KNOWN_SIZES)}")
    size = KNOWN_SIZES[model]
    geometry = stage_geometry(int(frames), int(height), int(width))
    s = geometry.num_stages
    reference = 2 * sum(schedule_flops(geometry, plain_counts(s), size)) / TERA
    tokens = " / ".join(f"{st.tokens:,}" for st in geometry.stages)
    one_forward = sum(schedule_flops(geometry, plain_counts(s, steps=1), size)) / TERA
    lines = [
        f"**{model}** at {frames}×{height}×{width} (tokens per stage, low → high: {tokens}; "
        f"one full-resolution forward = {one_forward:,.1f} TFLOPs)",
        "",
        "| schedule | CFG | TFLOPs per stage (low → high) | total TFLOPs | % of 0-0-50 with CFG |",
        "|---|---|---|---|---|",
    ]
    rows = []
    for text, cfg in parse_schedule_list(spec):
        counts = parse_schedule(text, s)
        per_stage = [f / TERA for f in schedule_flops(geometry, counts, size)]
        one = sum(per_stage)
        total = 2 * one if cfg else one
        shown = f"2 × {one:,.0f} = {total:,.0f}" if cfg else f"{total:,.0f}"
        lines.append(
            f"| {format_schedule(counts)} | {'yes' if cfg else 'no'} "
            f"| {' / '.join(f'{v:,.1f}' for v in per_stage)} | {shown} | {100 * total / reference:.2f}% |"
        )
        rows.append(
            {
                "schedule": format_schedule(counts),
                "cfg": cfg,
                "tflops_per_stage": per_stage,
                "tflops": total,
                "percent_of_plain_cfg": 100 * total / reference,
            }
        )
    return "\n".join(lines), rows
