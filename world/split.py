"""The held-out split: compositions the generator never sees in training.

Five (shape, color) pairs and five (shape, motion) pairs, one of each per shape, are held out:

    (shape, color)   circle+green, square+purple, triangle+cyan, star+orange, cross+white
    (shape, motion)  circle+bounce, square+rotate, triangle+up, star+grow, cross+left

A clip is *held out* when any of its objects uses one of these pairs. Every shape, color and motion still
appears in training, only these combinations do not, so the held-out split measures compositional
generalisation. `sample_attributes(rng, "train")` never returns a held-out clip; `"heldout"` always returns
one (its main object uses a held-out pair); `"all"` samples every valid composition.

The attribute probe (bench/) is trained on `"all"`: it is a measuring instrument and must read every
composition; "held-out" for the probe means clips from separate seeds.
"""

from __future__ import annotations

import numpy as np

from world.attributes import (
    BACKGROUNDS,
    COLORS,
    INVALID_SHAPE_MOTIONS,
    MOTIONS,
    SHAPES,
    SPEEDS,
    ClipAttributes,
    ObjectSpec,
)

HELD_OUT_SHAPE_COLOR: frozenset[tuple[str, str]] = frozenset(
    {("circle", "green"), ("square", "purple"), ("triangle", "cyan"), ("star", "orange"), ("cross", "white")}
)
HELD_OUT_SHAPE_MOTION: frozenset[tuple[str, str]] = frozenset(
    {("circle", "bounce"), ("square", "rotate"), ("triangle", "up"), ("star", "grow"), ("cross", "left")}
)
SPLITS: tuple[str, ...] = ("train", "heldout", "all")


def object_is_held_out(obj: ObjectSpec) -> bool:
    """True when the object's (shape, color) or (shape, motion) pair is held out of training."""
    return (obj.shape, obj.color) in HELD_OUT_SHAPE_COLOR or (obj.shape, obj.motion) in HELD_OUT_SHAPE_MOTION


def is_held_out(attrs: ClipAttributes) -> bool:
    """True when any object of the clip uses a held-out (shape, color) or (shape, motion) pair."""
    return any(object_is_held_out(o) for o in attrs.objects)


def _sample_object(rng: np.random.Generator) -> ObjectSpec:
    while True:
        shape = SHAPES[rng.integers(len(SHAPES))]
        motion = MOTIONS[rng.integers(len(MOTIONS))]
        if (shape, motion) not in INVALID_SHAPE_MOTIONS:
            break
    color = COLORS[rng.integers(len(COLORS))]
    speed = None if motion == "still" else SPEEDS[rng.integers(len(SPEEDS))]
    return ObjectSpec(shape=shape, color=color, motion=motion, speed=speed)


def _sample_object_in(rng: np.random.Generator, held_out: bool | None) -> ObjectSpec:
    # Rejection sampling: about 22% of objects are held out, so either side is accepted within a few draws.
    while True:
        obj = _sample_object(rng)
        if held_out is None or object_is_held_out(obj) == held_out:
            return obj


def sample_attributes(
    rng: np.random.Generator, split: str = "train", n_objects: int | None = None, p_two: float = 0.2
) -> ClipAttributes:
    """Draw the attributes of one clip.

    split: "train" (no held-out pair anywhere), "heldout" (the main object uses a held-out pair; a second
    object may be anything) or "all". n_objects: 1, 2, or None for 2 with probability p_two.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if n_objects is None:
        n_objects = 2 if rng.random() < p_two else 1
    if n_objects not in (1, 2):
        raise ValueError(f"n_objects must be 1 or 2, got {n_objects}")
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    main_rule = {"train": False, "heldout": True, "all": None}[split]
    other_rule = False if split == "train" else None
    objects = [_sample_object_in(rng, main_rule)]
    if n_objects == 2:
        objects.append(_sample_object_in(rng, other_rule))
    return ClipAttributes(background=background, objects=tuple(objects))
