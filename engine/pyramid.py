"""Pyramid geometry: stages, per-stage latent shapes, noise intervals and shape validation.

Stages are indexed low → high (DESIGN §3): stage 0 is the lowest resolution and the noisiest,
stage S−1 is full resolution and ends clean. Each stage halves T, H and W of the next one; the causal
VAE's first latent frame stands alone, so latent frames go T → (T−1)/2 + 1 (21 → 11 → 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VAE_TEMPORAL_STRIDE = 4
VAE_SPATIAL_STRIDE = 8
PATCH_SPATIAL = 2  # Wan patch (1, 2, 2)
DEFAULT_NUM_STAGES = 3


def lower_frames(latent_frames: int) -> int:
    """Latent frames one stage down: the first frame stands alone, the rest pair up."""
    return (latent_frames - 1) // 2 + 1


def jump_sigma(sigma_end: float, block_elements: int) -> float:
    """Noise level after the renoising jump from level e with blocks of N elements (DESIGN §4).

    s = √N·e / (1 − e + √N·e); for N = 4 this is Pyramid Flow's 2e/(1+e).
    """
    r = math.sqrt(block_elements)
    return r * sigma_end / (1.0 - sigma_end + r * sigma_end)


def default_boundaries(num_stages: int) -> tuple[float, ...]:
    """Equal thirds (for 3 stages): nominal σ boundaries from 1 down to 0, length num_stages + 1."""
    return tuple(1.0 - k / num_stages for k in range(num_stages + 1))


@dataclass(frozen=True)
class Stage:
    """One stage of a pyramid for a concrete video shape."""

    index: int
    latent_shape: tuple[int, int, int, int]  # (C, T, H, W) of the stage's latent
    pixel_shape: tuple[int, int, int]  # (frames, height, width) this latent decodes to
    tokens: int  # transformer tokens after the (1, 2, 2) patch
    temporal_halved: bool  # whether going up from this stage doubles time (N = 8) or not (N = 4)
    sigma_start: float  # true noise level at which the stage begins (after the jump into it)
    sigma_end: float  # nominal boundary at which it ends (0 for the last stage)

    @property
    def block_elements(self) -> int:
        """N of the jump *out of* this stage for the non-first frames: 8 spatio-temporal, 4 spatial."""
        return 8 if self.temporal_halved else 4


@dataclass(frozen=True)
class PyramidGeometry:
    """All stages of a pyramid for a (frames, height, width) video; stage order is low → high."""

    frames: int
    height: int
    width: int
    latent_channels: int
    stages: tuple[Stage, ...]
    boundaries: tuple[float, ...]

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def full(self) -> Stage:
        return self.stages[-1]


def spatial_multiple(num_stages: int) -> int:
    """Pixel height/width must be a multiple of this (64 for 3 stages)."""
    return VAE_SPATIAL_STRIDE * PATCH_SPATIAL * 2 ** (num_stages - 1)


def frame_multiple(num_stages: int) -> int:
    """(frames − 1) must be a multiple of this (16 for 3 stages: 17, 33, 49, 65, 81 …)."""
    return VAE_TEMPORAL_STRIDE * 2 ** (num_stages - 1)


def _nearest(value: int, multiple: int, offset: int = 0, minimum: int | None = None) -> list[int]:
    """Nearest valid sizes of the form offset + k·multiple around value (one or two of them)."""
    lo = offset + ((value - offset) // multiple) * multiple
    minimum = offset + multiple if minimum is None else minimum
    candidates = sorted({max(lo, minimum), max(lo + multiple, minimum)})
    return candidates


def validate_video_shape(frames: int, height: int, width: int, num_stages: int = DEFAULT_NUM_STAGES) -> None:
    """Raise ValueError naming the nearest valid sizes unless the shape fits the VAE and the pyramid."""
    problems = []
    if num_stages < 1:
        raise ValueError(f"num_stages must be ≥ 1, got {num_stages}")
    for name, value in (("frames", frames), ("height", height), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    fm = frame_multiple(num_stages)
    if frames != 1 and (frames - 1) % fm != 0:
        near = _nearest(frames, fm, offset=1)
        problems.append(
            f"frames must be 1 or of the form {fm}·k + 1 for a {num_stages}-stage pyramid "
            f"(VAE stride {VAE_TEMPORAL_STRIDE}, time halves per stage); got {frames}, "
            f"nearest valid: {' or '.join(map(str, near))}"
        )
    sm = spatial_multiple(num_stages)
    for name, value in (("height", height), ("width", width)):
        if value % sm != 0:
            near = _nearest(value, sm)
            problems.append(
                f"{name} must be divisible by {sm} for a {num_stages}-stage pyramid; got {value}, "
                f"nearest valid: {' or '.join(map(str, near))}"
            )
    if problems:
        raise ValueError("; ".join(problems))


def stage_geometry(
    frames: int,
    height: int,
    width: int,
    num_stages: int = DEFAULT_NUM_STAGES,
    latent_channels: int = 16,
    boundaries: tuple[float, ...] | None = None,
) -> PyramidGeometry:
    """Geometry of every stage for a validated video shape.

    The true start level of stage k ≥ 1 is the jump level of stage k−1's end (DESIGN §4: s = jump(e),
    with the common target s* of the largest block type), so stage intervals overlap: the nominal
    boundaries partition [0, 1], the jumps renoise upwards.
    """
    validate_video_shape(frames, height, width, num_stages)
    boundaries = tuple(boundaries) if boundaries is not None else default_boundaries(num_stages)
    if len(boundaries) != num_stages + 1:
        raise ValueError(f"need {num_stages + 1} stage boundaries for {num_stages} stages, got {boundaries}")
    if abs(boundaries[0] - 1.0) > 1e-9 or abs(boundaries[-1]) > 1e-9:
        raise ValueError(f"stage boundaries must run from 1 down to 0, got {boundaries}")
    if any(a <= b for a, b in zip(boundaries, boundaries[1:])):
        raise ValueError(f"stage boundaries must strictly decrease, got {boundaries}")

    t = (frames - 1) // VAE_TEMPORAL_STRIDE + 1
    h, w = height // VAE_SPATIAL_STRIDE, width // VAE_SPATIAL_STRIDE
    shapes = [(t, h, w)]
    for _ in range(num_stages - 1):
        t, h, w = shapes[0]
        shapes.insert(0, (lower_frames(t), h // 2, w // 2))

    stages = []
    for k, (t, h, w) in enumerate(shapes):
        halved = k + 1 < num_stages and shapes[k + 1][0] != t
        if k == 0:
            start = boundaries[0]
        else:
            start = jump_sigma(boundaries[k], stages[-1].block_elements)
        stages.append(
            Stage(
                index=k,
                latent_shape=(latent_channels, t, h, w),
                pixel_shape=(
                    (t - 1) * VAE_TEMPORAL_STRIDE + 1,
                    h * VAE_SPATIAL_STRIDE,
                    w * VAE_SPATIAL_STRIDE,
                ),
                tokens=t * (h // PATCH_SPATIAL) * (w // PATCH_SPATIAL),
                temporal_halved=halved,
                sigma_start=start,
                sigma_end=boundaries[k + 1],
            )
        )
    return PyramidGeometry(frames, height, width, latent_channels, tuple(stages), boundaries)
