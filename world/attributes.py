"""What a procedural clip is made of: shapes, colors, backgrounds, motions, speeds.

A clip is described by `ClipAttributes`: one background and one or two `ObjectSpec`s. The first object is
the *main* object: it is drawn last (on top, never occluded) and it is the one the probe's heads read.
Everything else about a clip (positions, sizes, rotation direction, small color jitter) is layout, sampled
from the clip's seed by `world.render`, and never appears in the caption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "orange", "purple", "white", "cyan")
BACKGROUNDS: tuple[str, ...] = ("black", "gray", "navy", "sunset")
MOTIONS: tuple[str, ...] = (
    "left",
    "right",
    "up",
    "down",
    "grow",
    "shrink",
    "rotate",
    "bounce",
    "still",
)
SPEEDS: tuple[str, ...] = ("slow", "fast")

# Object colors in sRGB 0-255, picked far apart so that blur, noise and color jitter keep them separable.
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (40, 200, 70),
    "blue": (45, 95, 240),
    "yellow": (245, 225, 40),
    "orange": (250, 140, 20),
    "purple": (150, 60, 210),
    "white": (240, 240, 240),
    "cyan": (30, 215, 225),
}

# Backgrounds: (top color, bottom color) of a vertical linear gradient; equal ends mean a plain background.
# All are darker than every object color so that every (object, background) pair has contrast.
BACKGROUND_RGB: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "black": ((8, 8, 10), (8, 8, 10)),
    "gray": ((100, 100, 104), (100, 100, 104)),
    "navy": ((6, 10, 40), (30, 55, 120)),
    "sunset": ((70, 20, 50), (150, 70, 30)),
}

# A circle looks identical at every angle, so "a circle rotating" cannot be rendered; it is never sampled
# and is rejected when constructed.
INVALID_SHAPE_MOTIONS: frozenset[tuple[str, str]] = frozenset({("circle", "rotate")})


def _check(value: str | None, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


@dataclass(frozen=True)
class ObjectSpec:
    """One object in a clip. `speed` is None for `still` objects, and may be None ("unspecified") for
    attributes parsed from a caption that names no speed; the renderer then picks one from the seed."""

    shape: str
    color: str
    motion: str
    speed: str | None = None

    def __post_init__(self) -> None:
        _check(self.shape, SHAPES, "shape")
        _check(self.color, COLORS, "color")
        _check(self.motion, MOTIONS, "motion")
        if self.speed is not None:
            _check(self.speed, SPEEDS, "speed")
        if self.motion == "still" and self.speed is not None:
            raise ValueError(f"a still object has no speed, got speed {self.speed!r}")
        if (self.shape, self.motion) in INVALID_SHAPE_MOTIONS:
            raise ValueError(f"a {self.shape} cannot visibly {self.motion}; pick another shape or motion")

    def to_dict(self) -> dict[str, str | None]:
        return {"shape": self.shape, "color": self.color, "motion": self.motion, "speed": self.speed}


@dataclass(frozen=True)
class ClipAttributes:
    """Everything a caption says about a clip: the background and 1-2 objects (objects[0] is the main one)."""

    background: str
    objects: tuple[ObjectSpec, ...]

    def __post_init__(self) -> None:
        _check(self.background, BACKGROUNDS, "background")
        if not 1 <= len(self.objects) <= 2:
            raise ValueError(f"a clip has one or two objects, got {len(self.objects)}")
        object.__setattr__(self, "objects", tuple(self.objects))

    @property
    def main(self) -> ObjectSpec:
        return self.objects[0]

    def to_dict(self) -> dict[str, Any]:
        return {"background": self.background, "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipAttributes:
        return cls(background=d["background"], objects=tuple(ObjectSpec(**o) for o in d["objects"]))
