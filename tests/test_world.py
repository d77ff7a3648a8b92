"""The procedural world: determinism, rendering, captions <-> attributes, held-out split, preview CLI."""

from __future__ import annotations

import time

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from world import (
    BACKGROUNDS,
    COLORS,
    HELD_OUT_SHAPE_COLOR,
    HELD_OUT_SHAPE_MOTION,
    MOTIONS,
    SHAPES,
    ClipAttributes,
    ObjectSpec,
    ProceduralVideoDataset,
    caption,
    clip_rng,
    is_held_out,
    make_batch,
    parse,
    render_clip,
    sample_attributes,
    sample_clip,
    sample_layout,
    tokenize,
    vocabulary,
)
from world.attributes import COLOR_RGB
from world.preview import main as preview_main

# ------------------------------------------------------------------------------------------- determinism


def test_same_seed_same_batch_and_different_seed_different_batch():
    a = make_batch(7, 4, frames=9, height=64, width=64)
    b = make_batch(7, 4, frames=9, height=64, width=64)
    c = make_batch(8, 4, frames=9, height=64, width=64)
    assert torch.equal(a.videos, b.videos)
    assert a.captions == b.captions and a.attributes == b.attributes
    assert not torch.equal(a.videos, c.videos)


def test_clip_does_not_depend_on_batch_size():
    small = make_batch(3, 2, frames=9, height=64, width=64)
    large = make_batch(3, 5, frames=9, height=64, width=64)
    assert torch.equal(small.videos, large.videos[:2])
    assert small.captions == large.captions[:2]


def test_dataset_stream_is_deterministic_and_workers_disjoint():
    first = [
        c
        for _, c in zip(range(4), ProceduralVideoDataset(seed=1, frames=5, height=32, width=32), strict=False)
    ]
    again = [
        c
        for _, c in zip(range(4), ProceduralVideoDataset(seed=1, frames=5, height=32, width=32), strict=False)
    ]
    assert [cap for _, cap in first] == [cap for _, cap in again]
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(first, again, strict=True))
    assert first[0][0].shape == (3, 5, 32, 32)


# -------------------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("size", [(17, 128, 128), (17, 64, 64), (9, 64, 128), (33, 48, 48)])
def test_any_size_renders_uint8_frames(size):
    frames, height, width = size
    clip = sample_clip(clip_rng(0, 0), frames, height, width, p_two=1.0)
    assert clip.video.shape == (frames, height, width, 3) and clip.video.dtype == np.uint8
    batch = make_batch(0, 2, frames, height, width)
    assert batch.videos.shape == (2, 3, frames, height, width) and batch.videos.dtype == torch.float32
    assert batch.videos.min() >= -1 and batch.videos.max() <= 1


def test_edges_are_antialiased_and_object_has_its_color():
    attrs = ClipAttributes("black", (ObjectSpec("star", "red", "still"),))
    video = render_clip(attrs, 5, frames=1, height=128, width=128)[0].astype(int)
    red = np.array(COLOR_RGB["red"])
    dist_red = np.abs(video - red).max(-1)
    dist_bg = np.abs(video - video[0, 0]).max(-1)
    inside, outside = dist_red <= 10, dist_bg <= 8
    edge = ~inside & ~outside
    assert inside.sum() > 150  # a solid red object
    # Anti-aliasing leaves a one-pixel band of intermediate colors along the outline.
    assert edge.sum() > 40 and edge.sum() < inside.sum()


def test_tracks_follow_the_named_motion():
    rng = np.random.default_rng(0)
    for motion in MOTIONS:
        shape = "square"
        spec = ObjectSpec(shape, "blue", motion, None if motion == "still" else "fast")
        (track,) = sample_layout(ClipAttributes("gray", (spec,)), rng, 17, 128, 128)
        dx, dy = track.cx[-1] - track.cx[0], track.cy[-1] - track.cy[0]
        expected = {
            "left": dx < -40,
            "right": dx > 40,
            "up": dy < -40,
            "down": dy > 40,
            "grow": track.scale[-1] > 2 * track.scale[0],
            "shrink": track.scale[-1] < track.scale[0] / 2,
            "rotate": abs(track.angle[-1]) > np.deg2rad(100),
            "bounce": np.abs(np.diff(track.cy)).sum() > 100,
            "still": dx == dy == 0 and np.ptp(track.scale) == 0 and np.ptp(track.angle) == 0,
        }
        assert expected[motion], motion
        # Objects stay inside the frame.
        assert (track.cx - track.extent >= 0).all() and (track.cx + track.extent <= 128).all()
        assert (track.cy - track.extent >= 0).all() and (track.cy + track.extent <= 128).all()


def test_rotating_circle_is_rejected():
    with pytest.raises(ValueError, match="circle cannot visibly rotate"):
        ObjectSpec("circle", "red", "rotate", "slow")


def test_thousands_of_clips_a_minute():
    t0 = time.perf_counter()
    for i in range(100):
        sample_clip(clip_rng(11, i), 17, 128, 128, p_two=0.2)
    per_minute = 100 / (time.perf_counter() - t0) * 60
    assert per_minute > 2000, f"{per_minute:.0f} clips/min at 17x128x128"


# --------------------------------------------------------------------------------------------- captions


def test_caption_round_trip_many_seeds():
    for i in range(3000):
        rng = clip_rng(2024, i)
        attrs = sample_attributes(rng, "all", p_two=0.4)
        text = caption(attrs, rng)
        assert parse(text) == attrs, text
        assert parse(caption(attrs)) == attrs


def test_example_captions_from_the_issue():
    a = parse("a red circle moving left on a black background")
    assert a == ClipAttributes("black", (ObjectSpec("circle", "red", "left", None),))
    b = parse("a crimson disc drifts leftwards over black")
    assert b == a
    c = parse("on a sunset gradient background, an amber star rapidly spins while a white box stands still")
    assert c.objects == (
        ObjectSpec("star", "orange", "rotate", "fast"),
        ObjectSpec("square", "white", "still"),
    )
    assert c.background == "sunset"


def test_captions_vary():
    attrs = ClipAttributes("navy", (ObjectSpec("triangle", "cyan", "down", "slow"),))
    texts = {caption(attrs, np.random.default_rng(i)) for i in range(200)}
    assert len(texts) > 50


def test_vocabulary_is_exactly_the_words_captions_use():
    vocab = set(vocabulary())
    seen: set[str] = set()
    for i in range(6000):
        rng = clip_rng(99, i)
        attrs = sample_attributes(rng, "all", p_two=0.5)
        seen.update(tokenize(caption(attrs, rng)))
        seen.update(tokenize(caption(attrs)))
    assert seen <= vocab, seen - vocab
    assert vocab <= seen, vocab - seen
    assert vocabulary() == sorted(vocab)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a red hexagon moving left on a black background", "'hexagon'"),
        ("a magenta circle moving left on a black background", "'magenta'"),
        ("a red circle moving left on a black background 3", "'3'"),
        ("a red circle zooming left over black", "'zooming'"),
    ],
)
def test_parser_names_the_unknown_word(text, named):
    with pytest.raises(ValueError, match=f"unknown word {named}"):
        parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a red circle moving left", "no background"),
        ("a red circle moving left on a black background over gray", "two backgrounds"),
        ("a red circle moving on a black background", "'moving' needs a direction"),
        ("a red circle on a black background", "no motion"),
        ("a red circle growing and shrinking over black", "contradictory motions"),
        ("a red circle square moving left over black", "two shapes"),
        ("a red moving left over black", "no shape"),
        ("circle moving left over black", "before any color word"),
        ("a red circle standing still slowly over black", "stands still"),
        ("a red circle rotating over black", "circle cannot visibly rotate"),
        ("", "empty caption"),
    ],
)
def test_parser_errors_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


# --------------------------------------------------------------------------------------------- held out


def test_held_out_pairs_are_well_formed():
    for shape, color in HELD_OUT_SHAPE_COLOR:
        assert shape in SHAPES and color in COLORS
    for shape, motion in HELD_OUT_SHAPE_MOTION:
        assert shape in SHAPES and motion in MOTIONS
    # One held-out color and one held-out motion per shape: every shape keeps most compositions.
    assert sorted(s for s, _ in HELD_OUT_SHAPE_COLOR) == sorted(SHAPES)
    assert sorted(s for s, _ in HELD_OUT_SHAPE_MOTION) == sorted(SHAPES)


def test_train_and_heldout_splits_are_disjoint_and_cover_the_vocabulary():
    rng = np.random.default_rng(5)
    train = [sample_attributes(rng, "train", p_two=0.5) for _ in range(3000)]
    heldout = [sample_attributes(rng, "heldout", p_two=0.5) for _ in range(500)]
    everything = [sample_attributes(rng, "all") for _ in range(2000)]
    assert not any(is_held_out(a) for a in train)
    assert all(is_held_out(a) for a in heldout)
    train_pairs = {(o.shape, o.color) for a in train for o in a.objects}
    train_motion_pairs = {(o.shape, o.motion) for a in train for o in a.objects}
    assert not train_pairs & HELD_OUT_SHAPE_COLOR and not train_motion_pairs & HELD_OUT_SHAPE_MOTION
    assert {a.main.shape for a in train} == set(SHAPES)
    assert {a.main.color for a in train} == set(COLORS)
    assert {a.main.motion for a in train} == set(MOTIONS)
    assert {a.background for a in train} == set(BACKGROUNDS)
    # Each held-out pair does occur in the held-out split, and "all" mixes both sides.
    held_pairs = {(a.main.shape, a.main.color) for a in heldout} | {
        (a.main.shape, a.main.motion) for a in heldout
    }
    assert HELD_OUT_SHAPE_COLOR | HELD_OUT_SHAPE_MOTION <= held_pairs
    frac = np.mean([is_held_out(a) for a in everything])
    assert 0.1 < frac < 0.4


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="unknown split 'test'"):
        sample_attributes(np.random.default_rng(0), "test")


# ---------------------------------------------------------------------------------------------- preview


def test_preview_cli_writes_mp4s_and_contact_sheet(tmp_path, capsys):
    preview_main(["--n", "2", "--out", str(tmp_path), "--size", "64", "--frames", "9", "--seed", "4"])
    for i in range(2):
        frames = imageio.mimread(tmp_path / f"clip_{i:03d}.mp4")
        assert len(frames) == 9 and frames[0].shape == (64, 64, 3)
    assert (tmp_path / "contact_sheet.png").stat().st_size > 1000
    lines = (tmp_path / "captions.txt").read_text().splitlines()
    assert len(lines) == 2 and all(parse(line.split("\t")[1]) for line in lines)
    assert "contact sheet" in capsys.readouterr().out
