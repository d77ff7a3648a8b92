"""Serving the real model on a Hugging Face Space: a hub model preloaded into the HF cache offered by id,
and the ZeroGPU duration sized per request from the FLOPs model (app/README.md, "A Space with the real
model"). Checked with a random-weight model of the real Wan layout standing in for the hub download."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from app import serving
from app.config import HUB_MODELS_ENV, AppConfig, hub_snapshot
from engine.flops import KNOWN_SIZES, TERA, schedule_flops
from engine.pyramid import stage_geometry
from engine.schedule import parse_schedule

ROOT = Path(__file__).resolve().parent.parent


def _real_tflops(schedule: str, cfg: bool) -> float:
    geometry = stage_geometry(81, 448, 832, latent_channels=16)
    counts = parse_schedule(schedule)
    return sum(schedule_flops(geometry, counts, KNOWN_SIZES["wan2.1-t2v-1.3b"], cfg=cfg)) / TERA


def test_zero_gpu_duration_follows_the_requests_compute_within_zero_gpus_bounds():
    pixels = 81 * 448 * 832
    full = serving.zero_gpu_seconds(_real_tflops("0-0-50", cfg=True), pixels)
    pyramid = serving.zero_gpu_seconds(_real_tflops("20-20-10", cfg=True), pixels)
    distilled = serving.zero_gpu_seconds(_real_tflops("2-2-1", cfg=False), pixels)
    # 25,182 TFLOPs at 200 TFLOP/s + 10 s + 15 s decode, × 1.25
    assert full == pytest.approx(1.25 * (10 + 25_182 / 200 + pixels * 5e-7), abs=1)
    assert serving.GPU_SECONDS_RANGE[1] >= full > pyramid > distilled >= serving.GPU_SECONDS_RANGE[0]
    assert pyramid < 0.4 * full  # the pyramid's 78% fewer FLOPs show in the slot it asks for
    assert serving.zero_gpu_seconds(0.01, 17 * 128 * 128) == serving.GPU_SECONDS_RANGE[0]
    assert serving.zero_gpu_seconds(1e6, pixels) == serving.GPU_SECONDS_RANGE[1]


def test_gpu_passes_a_per_request_duration_to_spaces(monkeypatch):
    seen = {}

    def fake_gpu(duration):
        seen["duration"] = duration
        return lambda fn: ("wrapped", fn)

    monkeypatch.setitem(sys.modules, "spaces", SimpleNamespace(GPU=fake_gpu))
    size = lambda *a, **k: 42  # noqa: E731

    def fn(x):
        return x

    assert serving.gpu(fn, duration=size) == ("wrapped", fn) and seen["duration"] is size
    assert serving.gpu(duration=7)(fn) == ("wrapped", fn) and seen["duration"] == 7
    monkeypatch.delitem(sys.modules, "spaces")
    monkeypatch.setattr("builtins.__import__", _no_spaces(__import__))
    assert serving.gpu(fn, duration=size) is fn  # no ZeroGPU: unchanged


def _no_spaces(real_import):
    def guarded(name, *args, **kwargs):
        if name == "spaces":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    return guarded


def test_the_duration_of_an_app_request_is_computed_from_its_own_arguments():
    from app.runs import gpu_seconds

    tiny = gpu_seconds("pyramidal-wan-tiny", "/unused", "a red circle moving left on a black background")
    assert tiny == serving.GPU_SECONDS_RANGE[0]  # 0.2 TFLOPs: the shortest slot
    refused = gpu_seconds("pyramidal-wan-tiny", "/unused", "", schedule="2-2-1")  # empty prompt
    assert refused == serving.GPU_SECONDS_RANGE[0]


def _space_front_matter() -> dict:
    """The front matter app/README.md documents for a Space that serves the real model."""
    text = (ROOT / "app/README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n---\n(.*?)---\n```", text, re.S)
    assert block, "app/README.md documents the Space's front matter in a ```yaml block"
    return yaml.safe_load(block.group(1))


def _preloaded(cache: Path, repo_id: str) -> Path:
    """Put a random-weight model of the real layout where preload_from_hub would have put repo_id."""
    from engine.models import build_random_tiny, save_model

    folder = cache / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs/main").write_text("0" * 40)
    return save_model(*build_random_tiny(), folder / "snapshots" / ("0" * 40))


def test_a_documented_space_serves_its_preloaded_hub_model(tmp_path, monkeypatch):
    matter = _space_front_matter()
    repos = matter["preload_from_hub"]
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in repos and matter["app_file"] == "app.py"
    assert matter["sdk"] == "gradio"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = _preloaded(tmp_path / "hub", repos[0])

    monkeypatch.setenv(HUB_MODELS_ENV, repos[0])
    config = AppConfig.from_env()
    assert config.model_dirs == [str(snapshot)]

    from app.registry import ModelRegistry
    from app.runs import RunView, run_generation

    registry = ModelRegistry(config.model_dirs)
    assert str(snapshot) in [e.key for e in registry.entries()]
    views = [
        v
        for v in run_generation(
            str(snapshot),
            str(tmp_path / "out"),
            "a red circle moving left on a black background",
            schedule="1-1-1",
            frames=17,
            height=64,
            width=64,
            seed=3,
        )
        if isinstance(v, RunView)
    ]
    assert views[-1].phase == "final" and Path(views[-1].video).is_file()


def test_a_hub_model_missing_from_the_cache_is_refused_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="preload_from_hub"):
        hub_snapshot("Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    from app.config import parse_config

    with pytest.raises(SystemExit):
        parse_config(["--hub-model", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"])
