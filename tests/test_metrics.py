"""ToyBench metrics: exact Fréchet distances, the centroid motion rules, and that the metrics can fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench.metric_check import corrupted_sets, recolor
from bench.metrics import (
    adherence,
    centroid_motion,
    coherence,
    evaluate_videos,
    frechet_distance,
    latent_frame_index,
    per_class,
    temporal_consistency,
)
from bench.probe import HEADS, labels_for, load_probe
from world import COLORS, is_held_out, make_batch, parse

REVERSIBLE = {
    "left": "right",
    "right": "left",
    "up": "down",
    "down": "up",
    "grow": "shrink",
    "shrink": "grow",
}


def test_frechet_distance_exact_cases():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 16, generator=g) @ torch.randn(16, 16, generator=g)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.randn(16, generator=g)
    # A pure shift leaves the covariances equal: FD = |shift|^2.
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.square().sum()), rel=1e-6)
    # Scaling by 2 around zero: |mu|^2 + tr(S) + 4 tr(S) - 2 * 2 tr(S) = |mu|^2 + tr(S).
    mu, cov = a.double().mean(0), torch.cov(a.double().T)
    expected = float(mu.square().sum() + cov.trace())
    assert frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-6)
    b = torch.randn(300, 16, generator=g)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)
    # Fewer clips than dimensions (rank-deficient covariances) still gives a finite, non-negative number.
    assert 0 <= frechet_distance(a[:8], b[:8]) < float("inf")


def test_frechet_distance_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected \\(N, D\\)"):
        frechet_distance(torch.zeros(4, 3), torch.zeros(4, 5))
    with pytest.raises(ValueError, match="at least 2 clips"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(4, 3))


def test_centroid_rules_read_real_motion_and_fail_on_reversed():
    batch = make_batch(77, 96, frames=17, height=64, width=64, split="all", n_objects=1)
    truth = [a.main.motion for a in batch.attributes]
    rule = centroid_motion(batch.videos)
    assert np.mean([r == t for r, t in zip(rule, truth, strict=True)]) >= 0.95
    reversed_rule = centroid_motion(batch.videos.flip(2))
    reversible = [i for i, t in enumerate(truth) if t in REVERSIBLE]
    assert len(reversible) > 30
    assert np.mean([reversed_rule[i] == truth[i] for i in reversible]) <= 0.05
    assert np.mean([reversed_rule[i] == REVERSIBLE[truth[i]] for i in reversible]) >= 0.9


def test_temporal_consistency_scores_noise_and_freezing_low():
    real = make_batch(3, 8, frames=17, height=64, width=64, n_objects=1).videos
    other = make_batch(4, 8, frames=17, height=64, width=64, n_objects=1).videos
    assert temporal_consistency(other, real)["score"] > 0.5
    noisy = real + 0.3 * torch.randn(real.shape, generator=torch.Generator().manual_seed(0))
    assert temporal_consistency(noisy, real)["score"] < 0.1
    frozen = real[:, :, :1].expand_as(real)
    assert temporal_consistency(frozen, real)["score"] < 0.01


def test_adherence_counts_each_attribute():
    batch = make_batch(9, 4, frames=5, height=32, width=32, n_objects=1, split="all")
    attrs = batch.attributes
    pred = labels_for(attrs)
    pred["speed"] = pred["speed"].clamp_min(0)
    assert adherence(pred, attrs)["all"] == 1.0
    pred["color"] = (pred["color"] + 1) % len(COLORS)
    result = adherence(pred, attrs)
    assert result["color"] == 0.0 and result["all"] == 0.0 and result["shape"] == 1.0


def test_per_class_names_the_failing_value_and_what_it_was_read_as():
    attrs = [parse(f"a red {shape} moving left over black") for shape in ("circle", "circle", "star", "star")]
    pred = labels_for(attrs)
    assert per_class(pred, attrs, "shape") == {
        "circle": {"n": 2, "rate": 1.0, "mistaken_for": None},
        "star": {"n": 2, "rate": 1.0, "mistaken_for": None},
    }
    pred["shape"][2:] = HEADS["shape"].index("circle")  # every star read as a circle
    result = per_class(pred, attrs, "shape")
    assert result["star"] == {"n": 2, "rate": 0.0, "mistaken_for": "circle"}
    assert result["circle"]["rate"] == 1.0


def test_recolor_changes_only_the_main_color():
    attrs = parse("a red circle moving left and a blue square growing over black")
    changed = recolor(attrs)
    assert (
        changed.main.color != "red"
        and changed.main.shape == "circle"
        and changed.objects[1] == attrs.objects[1]
    )


@pytest.fixture(scope="module")
def scored():
    """Real clips and three corruptions, each scored against the real clips' captions (48 clips at the
    probe's own 17x64x64, which keeps this fast; `python -m bench.metric_check` runs it at any size)."""
    attrs, reference, variants = corrupted_sets(48, 4242, 17, 64, 64)
    probe = load_probe()
    return attrs, {k: evaluate_videos(v, attrs, probe, reference) for k, v in variants.items()}


def test_real_clips_score_well(scored):
    _, s = scored
    real = s["real"]
    assert real["n"] == 48
    for key in ("shape", "color", "background", "motion", "all"):
        assert real["adherence"][key] >= 0.9, (key, real["adherence"])
    assert real["temporal"]["score"] > 0.8
    assert real["centroid_motion"]["vs_caption"] >= 0.95


def test_corrupted_clips_score_clearly_worse(scored):
    attrs, s = scored
    real = s["real"]
    assert s["wrong_color"]["adherence"]["color"] <= 0.15
    assert s["wrong_color"]["adherence"]["all"] <= 0.15
    assert s["wrong_color"]["fd"] > 2 * real["fd"]
    # Time reversal swaps left/right, up/down and grow/shrink; bounce, rotate and still survive it.
    share_reversible = np.mean([a.main.motion in REVERSIBLE for a in attrs])
    assert s["reversed"]["adherence"]["motion"] <= 1 - share_reversible + 0.1
    assert s["reversed"]["centroid_motion"]["vs_caption"] <= 1 - share_reversible + 0.1
    assert s["reversed"]["fd"] > 2 * real["fd"]
    assert s["noisy"]["fd"] > 3 * real["fd"]
    assert s["noisy"]["temporal"]["score"] < 0.2
    for name in ("wrong_color", "reversed"):
        assert s[name]["adherence"]["all"] < real["adherence"]["all"] - 0.3, name


def test_toybench_cli_on_random_tiny(tmp_path, capsys):
    from bench.toybench import main as toybench_main

    prompts = tmp_path / "prompts.txt"
    # One seen and one held-out composition (a green circle is held out).
    prompts.write_text("a red square moving left on a black background\na green circle growing over gray\n")
    args = ["--model", "random-tiny", "--schedule", "2-2-1", "--prompts-file", str(prompts), "--height", "64"]
    assert toybench_main([*args, "--width", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["adherence"]) >= {"color", "shape", "background", "motion", "all"}
    assert all(0 <= out["adherence"][k] <= 1 for k in ("color", "shape", "background", "motion", "all"))
    assert out["n"] == 2 and out["n_heldout"] == 1 and out["schedule"] == "2-2-1" and out["height"] == 64
    assert out["seconds_per_video"] > 0 and out["tflops_per_video"] > 0
    assert set(out["per_class"]["shape"]) == {"square", "circle"}
    assert out["per_class"]["motion"]["left"]["n"] == 1 and out["per_class"]["motion"]["grow"]["n"] == 1
    # Random weights draw noise: far from real clips, while two real draws are close.
    assert out["fd"] > 3 * out["fd_floor"]


def test_toybench_step_rule_reaches_the_sampler():
    from bench.toybench import generate_one
    from engine.models import load_model

    model = load_model("random-tiny")
    prompt = "a red square moving left on a black background"
    videos = {}
    for rule in ("euler", "x0"):
        video, result = generate_one(model, prompt, "2-2-1", seed=3, size=(None, 64, 64), step_rule=rule)
        assert result.request.step_rule == rule
        videos[rule] = video
    assert not torch.equal(videos["euler"], videos["x0"])


def test_default_prompts_are_fixed_by_seed_and_mix_held_out():
    from bench.toybench import default_prompts

    prompts = default_prompts(16, seed=3)
    assert prompts == default_prompts(16, seed=3) and prompts != default_prompts(16, seed=4)
    held = [is_held_out(parse(p)) for p in prompts]
    assert sum(held) == 4 and not any(held[i] for i in range(16) if i % 4 != 3)


def test_prompts_file_errors_name_the_line(tmp_path):
    from bench.toybench import read_prompts

    path = tmp_path / "prompts.txt"
    path.write_text(
        "a red circle moving left on a black background\n\na red hexagon moving left over black\n"
    )
    with pytest.raises(ValueError, match="prompts.txt:3: unknown word 'hexagon'"):
        read_prompts(path)


def _chunk_frozen(videos: torch.Tensor) -> torch.Tensor:
    """Every latent frame decoded as one repeated picture: frames 1-4, 5-8, ... all equal their first."""
    index = torch.from_numpy(latent_frame_index(videos.shape[2]))
    first = torch.tensor([int((index == k).nonzero()[0]) for k in index.tolist()])
    return videos[:, :, first]


def test_coherence_passes_real_renders_and_fails_frozen_chunks_jumps_and_vanishing():
    batch = make_batch(31, 24, 17, 128, 128, n_objects=1)
    again = make_batch(32, 24, 17, 128, 128, n_objects=1)  # other layouts: the reference of the score
    attrs = batch.attributes
    real = coherence(batch.videos, attrs, again.videos)
    assert real["present_all_frames"] == 1.0
    assert real["size_stable"] == 1.0
    assert 0.7 < real["within_chunk_ratio"] < 1.4
    assert real["score"] > 0.6
    # Frames repeated 4x inside each latent frame: no motion inside chunks, all of it at the boundaries.
    frozen = coherence(_chunk_frozen(batch.videos), attrs, again.videos)
    assert frozen["within_chunk_ratio"] < 0.01
    assert frozen["score"] < 0.05
    # Objects jumping: each latent frame's chunk taken from another clip of the same caption set.
    jumpy = batch.videos.clone()
    index = latent_frame_index(17)
    for k in range(1, index.max() + 1):
        jumpy[:, :, index == k] = batch.videos.roll(k, dims=0)[:, :, index == k]
    jumps = coherence(jumpy, attrs, again.videos)
    assert jumps["boundary_ratio"] > 2 * jumps["boundary_ratio_real"]
    assert jumps["score"] < 0.5
    # The object gone from two latent frames (frames 5-12 show the background only).
    vanished = batch.videos.clone()
    vanished[:, :, 5:13] = batch.videos[:, :, :, :, :4].median(dim=-1, keepdim=True).values[:, :, 5:13]
    gone = coherence(vanished, attrs, again.videos)
    assert gone["present_all_frames"] <= 0.1
    assert gone["size_stable"] <= 0.1
