"""Step schedules: "20-20-10" strings, per-stage σ grids, and the optional timestep shift.

A schedule gives one step count per stage, low → high (paper notation: "20-20-10" is 20 steps at the
lowest stage, 10 at full resolution; "0-0-50" is plain Wan at full resolution). Stages with 0 steps may
only lead: the first stage with steps then starts from pure noise (σ = 1) at its own resolution.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

MAX_STEPS_PER_STAGE = 200


def parse_schedule(
    spec: str | Sequence[int], num_stages: int = 3, max_steps: int = MAX_STEPS_PER_STAGE
) -> tuple[int, ...]:
    """Parse "20-20-10" (or "20,20,10", or [20, 20, 10]) into a validated tuple of step counts.

    Raises ValueError with a message a user can act on.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ValueError(f"schedule is empty; give {num_stages} step counts like '20-20-10'")
        parts = re.split(r"\s*[-,]\s*|\s+", text)
        counts = []
        for p in parts:
            if not (p.isascii() and p.isdigit()):
                what = "an empty step count" if p == "" else f"{p!r} is not a whole number of steps"
                raise ValueError(f"schedule {spec!r}: {what}; use counts ≥ 0 like '20-20-10'")
            counts.append(int(p))
    else:
        counts = list(spec)
        for c in counts:
            if isinstance(c, bool) or not isinstance(c, int):
                raise ValueError(f"schedule {list(spec)!r}: {c!r} is not a whole number of steps")
    label = "-".join(map(str, counts))
    if len(counts) != num_stages:
        raise ValueError(
            f"schedule {label!r} has {len(counts)} step count(s) but the pyramid has {num_stages} stages; "
            f"give one per stage, low → high, e.g. '{'-'.join(['10'] * (num_stages - 1) + ['5'])}'"
        )
    if any(c < 0 for c in counts):
        raise ValueError(f"schedule {label!r}: step counts must be ≥ 0")
    if counts[-1] < 1:
        raise ValueError(f"schedule {label!r}: the last (full-resolution) stage needs at least 1 step")
    too_many = [c for c in counts if c > max_steps]
    if too_many:
        raise ValueError(f"schedule {label!r}: at most {max_steps} steps per stage (got {max(too_many)})")
    first_active = next(i for i, c in enumerate(counts) if c > 0)
    if any(c == 0 for c in counts[first_active:]):
        raise ValueError(
            f"schedule {label!r}: a stage with 0 steps may only come before the first stage with steps "
            f"(the latent cannot skip a stage once sampling has started)"
        )
    return tuple(counts)


def format_schedule(counts: Sequence[int]) -> str:
    return "-".join(str(c) for c in counts)


def steps_label(n: int) -> str:
    """ "1 step", "20 steps"."""
    return f"{n} step" if n == 1 else f"{n} steps"


def is_plain(counts: Sequence[int]) -> bool:
    """True when only the full-resolution stage has steps: the plain sampler ("0-0-50")."""
    return all(c == 0 for c in counts[:-1])


def shift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """Timestep shift σ' = s·σ / (1 + (s−1)·σ) (DESIGN §2); s > 1 spends more steps at high noise."""
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


def stage_sigmas(sigma_start: float, sigma_end: float, steps: int, shift: float = 1.0) -> torch.Tensor:
    """steps + 1 noise levels (float64) walking from sigma_start down to sigma_end.

    The shift warps the grid inside the stage's own interval (normalised to [0, 1]) so the stage's
    endpoints — properties of the trained pyramid — never move; for the plain sampler on [1, 0] it is
    exactly Wan's shift.
    """
    if steps < 1:
        raise ValueError("a stage needs at least 1 step to have a σ grid")
    if shift <= 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    u = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    u = shift_sigma(u, shift)
    return sigma_end + (sigma_start - sigma_end) * u


def schedule_sigmas(geometry, counts: Sequence[int], shift: float = 1.0) -> list[torch.Tensor | None]:
    """The σ grid of every stage of a schedule (None for skipped stages), low → high.

    The first stage with steps starts from pure noise (σ = 1); every later stage starts at its jump
    level (`geometry.stages[k].sigma_start`) and ends at its boundary.
    """
    if len(counts) != geometry.num_stages:
        raise ValueError(f"schedule has {len(counts)} stages but the pyramid has {geometry.num_stages}")
    first = next(k for k, c in enumerate(counts) if c > 0)
    grids: list[torch.Tensor | None] = []
    for k, stage in enumerate(geometry.stages):
        if counts[k] == 0:
            grids.append(None)
        else:
            start = 1.0 if k == first else stage.sigma_start
            grids.append(stage_sigmas(start, stage.sigma_end, counts[k], shift))
    return grids
