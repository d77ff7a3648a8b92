"""The shipped attribute probe: checkpoint, shapes, augmentation, and the accuracy gate on unseen seeds."""

from __future__ import annotations

import json

import pytest
import torch

from bench.eval_probe import CI_SEED, probe_accuracy
from bench.probe import DEFAULT_DIR, HEADS, AttributeProbe, augment, labels_for, load_probe, resample
from world import make_batch


@pytest.fixture(scope="module")
def probe() -> AttributeProbe:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return load_probe()


def test_checkpoint_is_small_and_self_describing():
    weights = DEFAULT_DIR / "probe.safetensors"
    assert weights.stat().st_size < 3 * 1024 * 1024
    config = json.loads((DEFAULT_DIR / "config.json").read_text())
    assert config["heads"] == {k: list(v) for k, v in HEADS.items()}
    assert "python -m bench.train_probe" in config["training"]["command"]


def test_probe_is_small(probe):
    assert sum(p.numel() for p in probe.parameters()) < 400_000


def test_accuracy_gate_on_unseen_seeds(probe):
    # 64 single-object clips at the default 17x128x128 from a seed range the probe never trained on.
    # The full 2000-clip number (>= 97% per attribute) is in bench/README.md.
    acc = probe_accuracy(probe, CI_SEED, 64)
    for head in ("shape", "color", "background", "motion"):
        assert acc[head] >= 0.9, (head, acc)


def test_reads_other_sizes(probe):
    batch = make_batch(5, 16, frames=9, height=64, width=64, n_objects=1, split="all")
    pred = probe.predict(batch.videos)
    assert pred["features"].shape == (16, probe.config.feature_dim)
    labels = labels_for(batch.attributes)
    # Resampled in time and space, the main attributes stay readable (not gated at 97%: not the default size).
    assert (pred["color"] == labels["color"]).float().mean() >= 0.75
    assert (pred["background"] == labels["background"]).float().mean() >= 0.75


def test_resample_shapes():
    x = torch.rand(2, 3, 9, 48, 80) * 2 - 1
    assert resample(x, 17, 64).shape == (2, 3, 17, 64, 64)
    same = torch.rand(1, 3, 17, 64, 64)
    assert torch.equal(resample(same, 17, 64), same)


def test_labels_skip_speed_of_still_objects():
    batch = make_batch(1, 64, frames=5, height=32, width=32, n_objects=1, split="all")
    labels = labels_for(batch.attributes)
    still = torch.tensor([a.main.motion == "still" for a in batch.attributes])
    assert still.any() and (labels["speed"][still] == -100).all() and (labels["speed"][~still] >= 0).all()


def test_augment_is_seeded_and_changes_the_clip_moderately():
    x = make_batch(2, 8, frames=17, height=64, width=64, n_objects=1).videos
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    change = (a - x).abs().mean()
    assert 0.005 < change < 0.25
