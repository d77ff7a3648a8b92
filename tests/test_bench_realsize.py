"""bench.realsize on the real Wan2.1-1.3B layout shrunk to toy width and depth: the same code path as the
real-size benchmark, in seconds."""

import json

import pytest

from bench import realsize
from engine.flops import TransformerSize, schedule_flops
from engine.pyramid import stage_geometry
from engine.schedule import parse_schedule

ARGS = ["--shrink", "--device", "cpu", "--frames", "17", "--height", "64", "--width", "128", "--repeats", "2"]


def test_json_has_stages_schedules_and_memory(capsys):
    result = realsize.main([*ARGS, "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result))
    geometry = stage_geometry(17, 64, 128)
    assert [s["tokens"] for s in printed["stages"]] == [s.tokens for s in geometry.stages]
    assert all(s["forward_ms"] > 0 and len(s["forward_ms_all"]) == 2 for s in printed["stages"])
    assert set(printed["schedules"]) == {"0-0-50", "20-20-10", "2-2-1"}
    assert printed["peak_memory_gb"]["host"] > 0 and printed["peak_memory_gb"]["device"] is None
    assert printed["vae_decode"]["video"] == [3, 17, 64, 128] and printed["vae_decode"]["seconds"] > 0


def test_ratios_match_the_flops_model_and_the_measured_forwards(capsys):
    result = realsize.main([*ARGS, "--json", "--measure", "2-2-1"])
    capsys.readouterr()
    shrunk = {**realsize.WAN21_T2V_13B, **realsize.SHRUNK_TRANSFORMER}
    size = TransformerSize.from_config(shrunk, text_len=512)
    geometry = stage_geometry(17, 64, 128)
    flops = {
        s: sum(schedule_flops(geometry, parse_schedule(s, 3), size, cfg=True)) for s in realsize.SCHEDULES
    }
    forward = [s["forward_ms"] / 1000 for s in result["stages"]]
    schedules = result["schedules"]
    for name, row in schedules.items():
        assert row["flops_ratio"] == pytest.approx(flops[name] / flops["0-0-50"], rel=1e-12)
        assert row["tflops"] == pytest.approx(flops[name] / 1e12, rel=1e-12)
        composed = sum(c * f for c, f in zip(parse_schedule(name, 3), forward))
        assert row["composed_seconds"] == pytest.approx(composed, abs=1e-4)
        assert row["time_ratio"] == pytest.approx(row["seconds"] / schedules["0-0-50"]["seconds"], abs=1e-4)
    assert schedules["2-2-1"]["source"] == "measured" and schedules["0-0-50"]["source"] == "composed"
    assert schedules["0-0-50"]["seconds"] == schedules["0-0-50"]["composed_seconds"]
    # the measured run spent its forwards inside the engine's sampler, and the sampler adds to them
    assert 0 < schedules["2-2-1"]["model_seconds"] <= schedules["2-2-1"]["seconds"]
    assert schedules["0-0-50"]["time_ratio"] == 1.0 and schedules["0-0-50"]["flops_ratio"] == 1.0


def test_table_marks_composed_numbers_and_shows_the_paper(capsys):
    result = realsize.main([*ARGS, "--offload", "model", "--vae-tiling"])  # the engine's memory modes
    assert (result["offload"], result["vae_tiling"]) == ("model", True)
    out = capsys.readouterr().out
    assert "| 0-0-50 |" in out and "*" in out.split("| 0-0-50 |")[1].splitlines()[0]
    assert "631.8" in out and "composed from the measured per-stage forward times" in out
