"""The procedural video world: shapes moving over backgrounds, with captions whose truth we know.

Trainers draw clips from it on the fly; bench scores generated videos against it. Deterministic by seed.

    from world import make_batch, parse, caption, vocabulary, is_held_out, sample_attributes
    batch = make_batch(seed=0, batch_size=8)        # videos (8, 3, 17, 128, 128) in [-1, 1]
    parse(batch.captions[0]) == batch.attributes[0]  # True
"""

from world.attributes import (
    BACKGROUNDS,
    COLORS,
    MOTIONS,
    SHAPES,
    SPEEDS,
    ClipAttributes,
    ObjectSpec,
)
from world.captions import caption, parse, tokenize, vocabulary
from world.dataset import (
    Batch,
    Clip,
    ProceduralVideoDataset,
    clip_rng,
    make_batch,
    render_batch,
    sample_clip,
    to_tensor,
    to_uint8,
)
from world.render import render_clip, sample_layout
from world.split import HELD_OUT_SHAPE_COLOR, HELD_OUT_SHAPE_MOTION, is_held_out, sample_attributes

__all__ = [
    "BACKGROUNDS",
    "COLORS",
    "MOTIONS",
    "SHAPES",
    "SPEEDS",
    "ClipAttributes",
    "ObjectSpec",
    "caption",
    "parse",
    "tokenize",
    "vocabulary",
    "Batch",
    "Clip",
    "ProceduralVideoDataset",
    "clip_rng",
    "make_batch",
    "render_batch",
    "sample_clip",
    "to_tensor",
    "to_uint8",
    "render_clip",
    "sample_layout",
    "HELD_OUT_SHAPE_COLOR",
    "HELD_OUT_SHAPE_MOTION",
    "is_held_out",
    "sample_attributes",
]
