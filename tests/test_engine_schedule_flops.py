"""Schedules and the compute model (DESIGN §8, paper Table 1)."""

import pytest
import torch

from engine.flops import KNOWN_SIZES, TERA, forward_flops, schedule_flops
from engine.pyramid import stage_geometry
from engine.schedule import is_plain, parse_schedule, stage_sigmas


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("20-20-10", (20, 20, 10)),
        ("0-0-50", (0, 0, 50)),
        (" 2, 2, 1 ", (2, 2, 1)),
        ([4, 4, 2], (4, 4, 2)),
        ("0-10-10", (0, 10, 10)),
    ],
)
def test_parse_valid(spec, expected):
    assert parse_schedule(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("20-x-10", "'x' is not a whole number"),
        ("0-0-0", "last .* at least 1 step"),
        ("1000-1000-1000", "at most 200 steps"),
        ("20-20", "has 2 step count.*3 stages"),
        ("", "empty"),
        ("-1-2-3", "empty step count"),
        ("10-0-10", "0 steps may only come before"),
        ("2.5-2-1", "'2.5' is not a whole number"),
        ([1, True, 1], "True is not a whole number"),
    ],
)
def test_parse_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(spec)


def test_plain_detection():
    assert is_plain((0, 0, 50)) and not is_plain((20, 20, 10))


def test_stage_sigmas_and_shift_keep_the_stage_endpoints():
    s = stage_sigmas(0.85, 1 / 3, 4)
    assert s[0] == pytest.approx(0.85) and s[-1] == pytest.approx(1 / 3) and len(s) == 5
    shifted = stage_sigmas(1.0, 0.0, 4, shift=3.0)
    assert torch.allclose(shifted, torch.tensor([1.0, 0.9, 0.75, 0.5, 0.0], dtype=torch.float64))
    assert torch.all(stage_sigmas(0.85, 1 / 3, 4, shift=3.0) >= s - 1e-12)


PAPER_TABLE_1 = [  # (schedule, cfg, TFLOPs in the paper; CFG rows are per forward pass set, i.e. "2 ×" value)
    ((0, 0, 50), True, 12592),
    ((20, 20, 10), True, 2821),
    ((0, 0, 4), False, 1007),
    ((0, 0, 2), False, 504),
    ((2, 2, 2), False, 534),
]


def test_forward_flops_of_wan_1_3b():
    assert forward_flops(30576, KNOWN_SIZES["wan2.1-t2v-1.3b"]) / TERA == pytest.approx(251.8, abs=0.05)


@pytest.mark.parametrize("counts, cfg, paper", PAPER_TABLE_1)
def test_paper_table_1(counts, cfg, paper):
    g = stage_geometry(81, 448, 832)
    total = sum(schedule_flops(g, counts, KNOWN_SIZES["wan2.1-t2v-1.3b"], cfg=cfg)) / TERA
    per_pass = total / 2 if cfg else total
    assert abs(round(per_pass) - paper) <= 1


def test_pyramid_saves_about_78_percent():
    g = stage_geometry(81, 448, 832)
    size = KNOWN_SIZES["wan2.1-t2v-1.3b"]
    ratio = sum(schedule_flops(g, (20, 20, 10), size)) / sum(schedule_flops(g, (0, 0, 50), size))
    assert ratio == pytest.approx(0.224, abs=0.003)
