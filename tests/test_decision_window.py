"""bench.decision_window: sampling from a real clip noised to a small σ0 keeps what the clip shows."""

from __future__ import annotations

from bench.decision_window import TRANSLATIONS, decision_window, group_rate
from engine.models import load_model


def test_group_rate_weighs_classes_by_their_clips():
    classes = {"left": {"n": 3, "rate": 1.0}, "grow": {"n": 1, "rate": 0.0}, "up": {"n": 1, "rate": 0.0}}
    assert group_rate(classes, TRANSLATIONS) == 0.75
    assert group_rate(classes, {"grow"}) == 0.0
    assert group_rate(classes, {"rotate"}) is None


def test_a_barely_noised_clip_comes_back_as_its_caption_says():
    """At σ0 = 0.05 the sampler only removes a little noise from a real clip, so the probe reads the clip's
    own (= the caption's) shape and motion about as often as from the VAE round trip (≥ 92%). Sampling from
    σ = 1 instead of σ0 (the grid or the noising wrong) gives wan-tiny's generation rates (about 50%)."""
    result = decision_window(load_model("wan-tiny", device="cpu", dtype="float32"), n=8, sigmas=(0.05,))
    r = result[0.05]
    assert r["shape"] >= 0.75 and r["motion"] >= 0.75, r
    motion = r["per_class"]["motion"]
    assert sum(c["n"] for c in motion.values()) == 8
    assert set(r) == {"shape", "motion", "translation", "in_place", "per_class"}
