"""bench.text_binding: the swapped captions change exactly one word of the description, and the test
runs end to end on a model and reports shares in [0, 1] for every σ and caption kind."""

import itertools

import numpy as np
import pytest

from bench.text_binding import SWAPS, swapped, text_binding
from engine.models import load_model
from world.attributes import INVALID_SHAPE_MOTIONS, ClipAttributes, ObjectSpec


@pytest.mark.parametrize("field", sorted(SWAPS))
def test_a_swap_changes_only_its_field_and_stays_valid(field):
    rng = np.random.default_rng(0)
    for shape, motion in itertools.product(*SWAPS.values()):
        if (shape, motion) in INVALID_SHAPE_MOTIONS:
            continue
        speed = None if motion == "still" else "fast"
        second = ObjectSpec("square", "red", "left", "slow")
        attrs = ClipAttributes("navy", (ObjectSpec(shape, "blue", motion, speed), second))
        new = swapped(attrs, field, rng)
        assert getattr(new.main, field) != getattr(attrs.main, field)
        assert new.background == attrs.background and new.objects[1] == second and new.main.color == "blue"
        other = "motion" if field == "shape" else "shape"
        assert getattr(new.main, other) == getattr(attrs.main, other)


def test_text_binding_reports_every_sigma_and_caption_kind():
    result = text_binding(load_model("random-tiny", device="cpu", dtype="float32"), n=4, sigmas=(0.9, 0.5))
    assert sorted(result) == [0.5, 0.9]
    for kinds in result.values():
        assert sorted(kinds) == ["motion_swapped", "shape_swapped", "true"]
        for fields in kinds.values():
            for r in fields.values():
                assert 0 <= r["follows_caption"] <= 1 and 0 <= r["follows_clip"] <= 1
        for field in SWAPS:  # with the true caption, the caption and the clip say the same
            assert kinds["true"][field]["follows_caption"] == kinds["true"][field]["follows_clip"]
