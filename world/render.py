"""Rendering: attributes + seed -> an anti-aliased uint8 clip (F, H, W, 3).

Two steps, both pure functions of their inputs:
1. `sample_layout` turns attributes into per-frame object tracks (centre, scale, angle) using the rng:
   positions, base size, rotation direction and a little color jitter are layout, not caption.
2. `render_tracks` draws the tracks. Each shape is a signed distance function (Inigo Quilez's 2D SDFs);
   coverage = clamp(0.5 - distance_in_pixels, 0, 1) is the analytic anti-aliasing of an edge one pixel
   wide, so no supersampling is needed and any resolution renders equally sharp.

Speeds are fractions of the clip, not per frame: a "fast" left move travels half the frame width over the
whole clip whatever the frame count, so 9-, 17- and 33-frame clips of one caption show the same motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from world.attributes import BACKGROUND_RGB, COLOR_RGB, SPEEDS, ClipAttributes, ObjectSpec

# Size of each shape in units of the object's base radius, and the distance of its farthest point.
_EXTENT = {"circle": 1.0, "square": 0.85 * 2**0.5, "triangle": 1.25, "star": 1.35, "cross": 1.11}
BASE_RADIUS_RANGE = (0.105, 0.135)  # fraction of min(H, W)
TRAVEL = {"slow": 0.25, "fast": 0.5}  # fraction of the frame crossed over the clip
SCALE_RANGE = {"slow": (0.75, 1.3), "fast": (0.55, 1.65)}  # grow; shrink runs it backwards
ROTATION_DEG = {"slow": 60.0, "fast": 150.0}  # total turn over the clip (below every symmetry aliasing)
BOUNCES = {"slow": 1.5, "fast": 3.0}  # floor contacts per clip
BOUNCE_HEIGHT = 0.4  # fraction of H
OBJECT_JITTER = 8.0  # +- per channel, 0-255
BACKGROUND_JITTER = 6.0


@dataclass(frozen=True)
class ObjectTrack:
    """Where one object is in every frame. Arrays are (F,); positions in pixels, angle in radians."""

    spec: ObjectSpec
    speed: str | None  # the speed actually rendered (drawn from the rng when spec.speed is None)
    rgb: np.ndarray  # (3,) float, 0-255
    radius: float  # base radius in pixels
    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    angle: np.ndarray

    @property
    def extent(self) -> np.ndarray:
        """(F,) distance from the centre to the farthest point of the shape, in pixels."""
        return _EXTENT[self.spec.shape] * self.radius * self.scale


# --------------------------------------------------------------------------------------------------- layout


def _object_track(
    spec: ObjectSpec, rng: np.random.Generator, frames: int, height: int, width: int
) -> ObjectTrack:
    t = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    speed = spec.speed
    if speed is None and spec.motion != "still":
        speed = SPEEDS[int(rng.integers(len(SPEEDS)))]
    radius = float(rng.uniform(*BASE_RADIUS_RANGE)) * min(height, width)
    ext = _EXTENT[spec.shape] * radius
    scale = np.ones(frames)
    angle = np.zeros(frames)
    motion = spec.motion
    if motion in ("grow", "shrink"):
        s0, s1 = SCALE_RANGE[speed]
        if motion == "shrink":
            s0, s1 = s1, s0
        scale = s0 * (s1 / s0) ** t  # geometric: equal relative change per frame
    if motion == "rotate":
        angle = np.deg2rad(ROTATION_DEG[speed]) * t * (1 if rng.random() < 0.5 else -1)
    margin = ext * scale.max() + 1.0

    def uniform_in(size: int, lo_extra: float = 0.0, hi_extra: float = 0.0) -> float:
        lo, hi = margin + lo_extra, size - margin - hi_extra
        return float(rng.uniform(lo, hi)) if hi > lo else (lo + hi) / 2

    cx = np.full(frames, uniform_in(width))
    cy = np.full(frames, uniform_in(height))
    if motion in ("left", "right", "up", "down"):
        size = width if motion in ("left", "right") else height
        travel = min(TRAVEL[speed] * size, max(size - 2 * margin, 0.0))
        start = uniform_in(size, 0.0, travel)
        path = start + travel * t
        if motion in ("left", "up"):
            path = size - path  # mirror: starts near the far side, travels towards 0
        if motion in ("left", "right"):
            cx = path
        else:
            cy = path
    elif motion == "bounce":
        floor = height - margin
        amplitude = min(BOUNCE_HEIGHT * height, max(floor - margin, 0.0))
        phase = float(rng.uniform(0.0, 1.0))
        cy = floor - amplitude * np.abs(np.sin(np.pi * (BOUNCES[speed] * t + phase)))
    jitter = rng.uniform(-OBJECT_JITTER, OBJECT_JITTER, size=3)
    rgb = np.clip(np.asarray(COLOR_RGB[spec.color], dtype=np.float64) + jitter, 0, 255)
    return ObjectTrack(spec=spec, speed=speed, rgb=rgb, radius=radius, cx=cx, cy=cy, scale=scale, angle=angle)


def _min_distance(a: ObjectTrack, b: ObjectTrack) -> float:
    """Smallest gap between the two objects' bounding circles over the clip (negative = overlap)."""
    return float(np.min(np.hypot(a.cx - b.cx, a.cy - b.cy) - a.extent - b.extent))


def sample_layout(
    attrs: ClipAttributes, rng: np.random.Generator, frames: int, height: int, width: int
) -> list[ObjectTrack]:
    """Per-frame tracks for every object of `attrs` (same order as attrs.objects). A second object is
    re-drawn up to 20 times to keep it from overlapping the main one; the best try is kept."""
    _check_size(frames, height, width)
    tracks = [_object_track(attrs.objects[0], rng, frames, height, width)]
    if len(attrs.objects) == 2:
        best = None
        for _ in range(20):
            cand = _object_track(attrs.objects[1], rng, frames, height, width)
            if best is None or _min_distance(tracks[0], cand) > _min_distance(tracks[0], best):
                best = cand
            if _min_distance(tracks[0], best) > 0:
                break
        tracks.append(best)
    return tracks


def _check_size(frames: int, height: int, width: int) -> None:
    if frames < 1 or height < 16 or width < 16:
        raise ValueError(f"clip size must be at least 1 frame of 16x16 pixels, got {frames}x{height}x{width}")


# --------------------------------------------------------------------------------------------------- shapes


def _sd_box(u: np.ndarray, v: np.ndarray, bx: float, by: float) -> np.ndarray:
    qx, qy = np.abs(u) - bx, np.abs(v) - by
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _sd_triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral, circumradius 1.25, pointing up. r is half the side length.
    r = 1.25 * 3**0.5 / 2
    k = 3**0.5
    px = np.abs(u) - r
    py = -v + r / k  # image y points down; the SDF is written with y up
    flip = px + k * py > 0
    px, py = np.where(flip, (px - k * py) / 2, px), np.where(flip, (-k * px - py) / 2, py)
    px = px - np.clip(px, -2 * r, 0)
    return -np.hypot(px, py) * np.sign(py)


def _sd_star(u: np.ndarray, v: np.ndarray, r: float = 1.35, rf: float = 0.45) -> np.ndarray:
    # Five-pointed star, outer radius r, inner radius ratio rf, a point straight up.
    k1x, k1y = 0.809016994375, -0.587785252292
    k2x, k2y = -k1x, k1y
    px, py = np.abs(u), -v
    d = np.maximum(k1x * px + k1y * py, 0)
    px, py = px - 2 * d * k1x, py - 2 * d * k1y
    d = np.maximum(k2x * px + k2y * py, 0)
    px, py = px - 2 * d * k2x, py - 2 * d * k2y
    px = np.abs(px)
    py = py - r
    bax, bay = -rf * k1y, rf * k1x - 1
    h = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), 0, r)
    return np.hypot(px - bax * h, py - bay * h) * np.sign(py * bax - px * bay)


def _sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) in units of the object's base radius."""
    if shape == "circle":
        return np.hypot(u, v) - 1.0
    if shape == "square":
        return _sd_box(u, v, 0.85, 0.85)
    if shape == "triangle":
        return _sd_triangle(u, v)
    if shape == "star":
        return _sd_star(u, v)
    if shape == "cross":
        return np.minimum(_sd_box(u, v, 1.05, 0.36), _sd_box(u, v, 0.36, 1.05))
    raise ValueError(f"no renderer for shape {shape!r}")


def coverage(track: ObjectTrack, height: int, width: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Anti-aliased coverage of one object, cropped to its bounding box over the clip.

    Returns (cov, (y0, y1, x0, x1)): cov is (F, y1-y0, x1-x0) float32 in [0, 1].
    """
    ext = track.extent + 1.5
    x0 = int(np.clip(np.floor(np.min(track.cx - ext)), 0, width))
    x1 = int(np.clip(np.ceil(np.max(track.cx + ext)), 0, width))
    y0 = int(np.clip(np.floor(np.min(track.cy - ext)), 0, height))
    y1 = int(np.clip(np.ceil(np.max(track.cy + ext)), 0, height))
    f32 = np.float32
    xs = np.arange(x0, x1, dtype=f32) + f32(0.5)  # pixel centres
    ys = np.arange(y0, y1, dtype=f32) + f32(0.5)
    dx = xs[None, None, :] - track.cx.astype(f32)[:, None, None]
    dy = ys[None, :, None] - track.cy.astype(f32)[:, None, None]
    cos = np.cos(track.angle).astype(f32)[:, None, None]
    sin = np.sin(track.angle).astype(f32)[:, None, None]
    size = (track.radius * track.scale).astype(f32)[:, None, None]
    u = (cos * dx + sin * dy) / size  # rotate by -angle into the shape's frame
    v = (cos * dy - sin * dx) / size
    dist_px = _sdf(track.spec.shape, u, v) * size
    return np.clip(f32(0.5) - dist_px, 0, 1).astype(f32), (y0, y1, x0, x1)


def background_image(
    background: str, height: int, width: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """(H, W, 3) float32 0-255: a vertical gradient between the background's top and bottom colors."""
    top, bottom = (np.asarray(c, dtype=np.float32) for c in BACKGROUND_RGB[background])
    if rng is not None:
        shift = rng.uniform(-BACKGROUND_JITTER, BACKGROUND_JITTER, size=3).astype(np.float32)
        top, bottom = np.clip(top + shift, 0, 255), np.clip(bottom + shift, 0, 255)
    w = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None, None]
    return np.broadcast_to((1 - w) * top + w * bottom, (height, width, 3)).astype(np.float32)


def render_tracks(tracks: list[ObjectTrack], background: np.ndarray, frames: int) -> np.ndarray:
    """Draw tracks over a (H, W, 3) background; the first track is drawn last (on top).

    Returns uint8 (F, H, W, 3).
    """
    height, width = background.shape[:2]
    video = np.repeat(background[None], frames, axis=0)
    for track in reversed(tracks):
        cov, (y0, y1, x0, x1) = coverage(track, height, width)
        region = video[:, y0:y1, x0:x1]
        region += cov[..., None] * (track.rgb.astype(np.float32) - region)
    return np.clip(video + 0.5, 0, 255).astype(np.uint8)


def render_clip(
    attrs: ClipAttributes,
    rng: np.random.Generator | int,
    frames: int = 17,
    height: int = 128,
    width: int = 128,
) -> np.ndarray:
    """Render `attrs` with layout drawn from `rng` (or a seed). Returns uint8 (F, H, W, 3)."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    tracks = sample_layout(attrs, rng, frames, height, width)
    return render_tracks(tracks, background_image(attrs.background, height, width, rng), frames)
