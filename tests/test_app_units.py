"""The app's pieces without a server: handlers (cancel, checks), model registry, output folders, the
Learn tab's numbers and plots, stage preview strips, prompts and configuration."""

from __future__ import annotations

import os
import re
import threading
import time
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from app_fixtures import PROMPT

from app.config import AppConfig
from app.handlers import Handlers, frame_choices, size_choices
from app.learn import compute_table, jump_panels, parse_schedule_list, sigma_curve
from app.outputs import OutputStore
from app.prompts import EXAMPLES, surprise_prompt
from app.registry import ModelRegistry
from app.runs import PREVIEW_FRAMES, PREVIEW_HEIGHT, preview_sheet
from app.serving import CancelRegistry, RunCancelled
from engine.pyramid import jump_sigma


@pytest.fixture
def handlers(tmp_path):
    return Handlers(AppConfig(outputs_root=tmp_path / "outputs", warm_up=False))


def test_stop_cancels_within_one_step_and_frees_the_model(handlers):
    steps = []
    progress = lambda value, desc=None, **_: steps.append(value)  # noqa: E731
    request = SimpleNamespace(session_hash="user-1")
    run = handlers.generate(
        PROMPT, None, 5, False, "random-tiny", "100-100-100", request=request, progress=progress
    )
    gallery, video, *_ = next(run)  # the stage-0 preview
    assert len(gallery) == 1 and video is None
    done_before = len(steps)
    assert handlers.cancels.cancel("user-1") == 1
    with pytest.raises(gr.Error, match="cancelled"):
        next(run)
    assert len(steps) - done_before <= 1  # stopped after at most one more denoising step, not a stage
    # The model's slot is free: another session runs to the end.
    other = handlers.generate(
        PROMPT,
        None,
        5,
        False,
        "random-tiny",
        "1-1-1",
        request=SimpleNamespace(session_hash="user-2"),
        progress=progress,
    )
    assert list(other)[-1][4]["phase"] == "final"


def test_model_slot_serialises_one_model_and_can_be_abandoned():
    registry = ModelRegistry(per_model=1)
    order, holding, release = [], threading.Event(), threading.Event()

    def first() -> None:
        with registry.slot("m", cancelled=lambda: False, waiting=lambda: None):
            order.append("first in")
            holding.set()
            release.wait(60)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    assert holding.wait(60)
    # the second request is told it waits (which lets the first one finish), then gets the slot
    with registry.slot("m", cancelled=lambda: False, waiting=release.set):
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"] and release.is_set()

    with registry.slot("m", cancelled=lambda: False, waiting=lambda: None):
        with pytest.raises(RunCancelled):  # a user who gives up while queued is not stuck
            with registry.slot("m", cancelled=lambda: True, waiting=lambda: None):
                pass
    with registry.slot("other", cancelled=lambda: False, waiting=lambda: None):  # other models do not wait
        with registry.slot("m", cancelled=lambda: False, waiting=lambda: None):
            pass


def test_cancel_registry_only_cancels_that_session():
    cancels = CancelRegistry()
    with cancels.run("a") as a_cancelled, cancels.run("b") as b_cancelled:
        assert cancels.cancel("a") == 1
        assert a_cancelled() and not b_cancelled()
    assert cancels.cancel("a") == 0


def test_registry_labels_models_and_explains_missing_folders(tmp_path):
    missing = str(tmp_path / "Wan2.1-T2V-1.3B-Diffusers")
    registry = ModelRegistry([missing])
    labels = {key: label for label, key in registry.choices()}
    assert labels["random-tiny"].startswith("random-tiny — random weights")
    assert labels[missing].endswith(f"folder not found ({missing})")
    assert registry.resolve(None) == registry.resolve("") == registry.default()
    with pytest.raises(ValueError, match="unknown model 'x'; choose one of: .*random-tiny"):
        registry.resolve("x")
    with pytest.raises(Exception, match="no model folder at"):
        registry.load(missing)


def test_schedule_check_and_model_settings(handlers):
    assert handlers.check_schedule("20-x-10", "random-tiny").startswith("**Invalid:**")
    assert "at most 200 steps" in handlers.check_schedule("1000-1000-1000", None)
    assert handlers.check_schedule("0-0-50", None) == "OK: plain sampler: 50 steps at full resolution"
    assert handlers.check_schedule("20-20-10", None) == "OK: 20 + 20 + 10 = 50 steps, low → high resolution"
    schedule, guidance, frames, height, width, shared, info = handlers.model_settings("random-tiny")
    values = (schedule, guidance["value"], frames.value, height.value, width.value, shared["value"])
    assert values == ("2-2-1", 3.0, 17, 128, 128, 0.0)
    assert "random-tiny" in info


def test_shape_choices_are_the_valid_pyramid_shapes():
    assert frame_choices()[:3] == [17, 33, 49] and 81 in frame_choices()
    assert size_choices()[:3] == [64, 128, 192] and {448, 832} <= set(size_choices())
    assert frame_choices(2)[:2] == [9, 17] and size_choices(2)[0] == 32


def test_output_folders_are_unique_and_old_ones_are_pruned(tmp_path):
    store = OutputStore(tmp_path, ttl_s=60)
    a, b = store.new_request_dir(), store.new_request_dir()
    assert a != b and not a.exists()  # named only: the run creates it once the request is valid
    a.mkdir(), b.mkdir()
    (a / "video.mp4").write_bytes(b"x")
    old = time.time() - 120
    os.utime(a, (old, old))
    assert store.prune() == [a]
    assert not a.exists() and b.exists()


def test_sweep_removes_runs_without_a_finished_video_and_keeps_finished_runs(tmp_path):
    store = OutputStore(tmp_path, ttl_s=3600)
    empty, killed, previews, done = (store.new_request_dir() for _ in range(4))
    for folder in (empty, killed, previews, done):
        folder.mkdir()
    (killed / "stage0.png").write_bytes(b"png")
    (killed / "2-2-1-seed7.partial.mp4").write_bytes(b"half")
    (previews / "stage0.png").write_bytes(b"png")  # killed before it began to encode
    (done / "stage0.png").write_bytes(b"png")
    (done / "2-2-1-seed7.mp4").write_bytes(b"mp4")
    (tmp_path / "stray.partial.mp4").write_bytes(b"half")
    removed = store.sweep()
    assert set(removed) == {empty, killed, previews, tmp_path / "stray.partial.mp4"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [done.name]
    assert sorted(p.name for p in done.iterdir()) == ["2-2-1-seed7.mp4", "stage0.png"]
    only_partial = store.new_request_dir()
    only_partial.mkdir()
    (only_partial / "x.partial.mp4").write_bytes(b"half")
    store.discard_partial(only_partial)  # a failed run: nothing left, not even the folder
    assert not only_partial.exists()


def test_preview_sheet_keeps_low_stages_blocky_and_shrinks_large_videos():
    rng = np.random.default_rng(0)
    low = rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    sheet = preview_sheet(low)
    assert sheet.shape == (PREVIEW_HEIGHT, 5 * PREVIEW_HEIGHT + 4 * 2, 3)
    assert np.array_equal(sheet[:4, :4], np.broadcast_to(low[0, 0, 0], (4, 4, 3)))  # nearest: 4×4 blocks
    big = rng.integers(0, 255, (81, 448, 832, 3), dtype=np.uint8)
    assert preview_sheet(big).shape[0] == PREVIEW_HEIGHT
    assert preview_sheet(big).shape[1] == PREVIEW_FRAMES * round(832 * PREVIEW_HEIGHT / 448) + 2 * (
        PREVIEW_FRAMES - 1
    )


def test_compute_table_reproduces_the_paper():
    table, rows = compute_table()
    paper = {"0-0-50": 2 * 12592, "20-20-10": 2 * 2821, "0-0-4": 1007, "0-0-2": 504, "2-2-2": 534}
    got = {r["schedule"]: r["tflops"] for r in rows}
    for schedule, tflops in paper.items():
        assert got[schedule] == pytest.approx(tflops, rel=1e-3), schedule
    assert got["2-2-1"] < got["0-0-2"] and rows[1]["percent_of_plain_cfg"] == pytest.approx(22.4, abs=0.1)
    assert "| 20-20-10 | yes |" in table and "546 / 4,004 / 30,576" in table
    with pytest.raises(ValueError, match="nearest valid"):
        compute_table("20-20-10", frames=81, height=480, width=832)
    with pytest.raises(ValueError, match="not a whole number"):
        compute_table("20-x-10")


def test_schedule_list_parsing():
    assert parse_schedule_list("0-0-50 cfg, 20-20-10+cfg; 2-2-1\n0-0-4 (cfg)") == [
        ("0-0-50", True),
        ("20-20-10", True),
        ("2-2-1", False),
        ("0-0-4", True),
    ]
    with pytest.raises(ValueError, match="one or more schedules"):
        parse_schedule_list(" , ")


def test_sigma_curve_walks_each_stage_and_jumps_up():
    data = sigma_curve("20-20-10")
    assert len(data) == 21 + 21 + 11 and list(data["stage"].unique()) == ["stage 0", "stage 1", "stage 2"]
    at_jump = data[data["step"] == 20]["sigma"].tolist()
    assert at_jump == pytest.approx([2 / 3, jump_sigma(2 / 3, 8)], abs=1e-4)  # 81 frames: N = 8 blocks
    assert data["sigma"].iloc[0] == 1.0 and data["sigma"].iloc[-1] == 0.0
    assert data["tokens"].tolist()[0] == 546 and data["tokens"].tolist()[-1] == 30576
    plain = sigma_curve("0-0-4")
    assert plain["stage"].unique().tolist() == ["stage 2"] and len(plain) == 5


def test_jump_panels_show_the_exact_noise_level():
    panels, note = jump_panels(1 / 3, "haar", seed=0)
    assert len(panels) == 6 and all(img.shape == (256, 256, 3) for img, _ in panels)
    assert "s = 2e/(1+e) = **0.5000**" in note and "α = (1−s)/(1−e) = **0.7500**" in note
    measured = float(re.search(r"noise around the training signal has std \*\*([\d.]+)\*\*", note).group(1))
    assert measured == pytest.approx(0.5, rel=0.05)
    assert jump_panels(0.5, "db2", 1)[1] != note
    with pytest.raises(ValueError, match="between 0 and 1"):
        jump_panels(1.0)


def test_surprise_prompts_are_in_the_world_grammar():
    prompts = {surprise_prompt(seed) for seed in range(5)}
    assert len(prompts) > 1 and all(isinstance(p, str) and len(p.split()) >= 4 for p in prompts)
    try:
        import world
    except ImportError:
        world = None
    if world is not None:
        for p in [*prompts, *EXAMPLES]:
            world.parse(p)  # raises on a word outside the grammar


def test_config_reads_model_folders_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "PYRAMIDALWAN_MODEL_DIRS", os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")])
    )
    config = AppConfig.from_env([str(tmp_path / "a"), str(tmp_path / "c")], workers=3, queue_size=None)
    assert config.model_dirs == [str(tmp_path / n) for n in "abc"]
    assert config.workers == 3 and config.queue_size == 16
    with pytest.raises(ValueError, match="per_model must be at least 1"):
        AppConfig.from_env(per_model=0)


def test_stop_reports_what_it_stopped(handlers):
    request = SimpleNamespace(session_hash="user-3")
    assert "Nothing was generating" in handlers.stop(request)
    with handlers.cancels.run("user-3") as cancelled:
        assert "cancelled" in handlers.stop(request) and cancelled()


def test_grammar_note_names_a_colour_used_as_a_background():
    from app.prompts import grammar_note

    assert "no background" in grammar_note("a red circle moving left on a white background")
    assert grammar_note("a red circle moving left on a black background") is None


def test_handler_signatures_are_the_params_objects_fields():
    """/generate and /compare take their parameters by these names in this order (the named API); the
    tabs build their input lists from the same objects, so neither order is written twice."""
    import inspect

    from app.params import CompareParams, GenerateParams

    for handler, params in ((Handlers.generate, GenerateParams), (Handlers.compare, CompareParams)):
        names = [p for p in inspect.signature(handler).parameters if p not in ("self", "request", "progress")]
        assert names == params.names()
    with pytest.raises(ValueError, match="no widget for .*negative_prompt"):
        GenerateParams.widget_list({"prompt": object()})
    values = CompareParams(prompt="p", seed=3, randomize_seed=False, schedule_2="2-2-1", model_2="m")
    assert values.slots()[1] == ("2-2-1", "m") and values.slots()[3] == (None, None)
    assert values.shared() == GenerateParams(prompt="p", seed=3, randomize_seed=False)


MEMORY_ENVS = (
    "PYRAMIDALWAN_OFFLOAD",
    "PYRAMIDALWAN_TEXT_ENCODER_CPU",
    "PYRAMIDALWAN_VAE_TILING",
    "PYRAMIDALWAN_VAE_SLICING",
)


def test_memory_options_parse_from_flags_and_the_environment(monkeypatch, capsys):
    from app.config import parse_config
    from engine.memory import MemoryMode

    for env in MEMORY_ENVS:
        monkeypatch.delenv(env, raising=False)
    config, args = parse_config([])
    assert config.memory_mode() == MemoryMode() and args.port is None  # default: everything off
    config, _ = parse_config(
        ["--offload", "sequential", "--text-encoder-cpu", "--vae-tiling", "--vae-slicing", "--workers", "3"]
    )
    assert config.memory_mode() == MemoryMode("sequential", True, True, True) and config.workers == 3

    for env, value in zip(MEMORY_ENVS, ("Model", "1", "yes", "off"), strict=True):
        monkeypatch.setenv(env, value)
    assert AppConfig.from_env().memory_mode() == MemoryMode("model", True, True, False)
    config, _ = parse_config(["--offload", "none", "--no-vae-tiling", "--vae-slicing"])  # flags win
    assert config.memory_mode() == MemoryMode("none", True, False, True)

    # Bad values: exit 2 with one line naming the flag or the variable and what is allowed.
    bad = [
        (["--offload", "fast"], {}, "argument --offload: invalid choice: 'fast'"),
        ([], {"PYRAMIDALWAN_OFFLOAD": "fast"}, "offload must be one of none, model, sequential, got 'fast'"),
        ([], {"PYRAMIDALWAN_VAE_TILING": "maybe"}, "$PYRAMIDALWAN_VAE_TILING must be one of 1/true/yes/on"),
        (["--vae-slicing=1"], {}, "ignored explicit argument"),
        (["--per-model", "0"], {}, "per_model must be at least 1"),
    ]
    for argv, env, message in bad:
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            with pytest.raises(SystemExit) as exit_info:
                parse_config(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err, (argv, env)
    with pytest.raises(ValueError, match=r"got 'x'$"):  # from a flag: no variable to blame
        AppConfig.from_env(offload="x")
    monkeypatch.setenv("PYRAMIDALWAN_OFFLOAD", "x")
    with pytest.raises(ValueError, match=r"got 'x' \(\$PYRAMIDALWAN_OFFLOAD\)"):
        AppConfig.from_env()


def test_memory_options_reach_the_engine_for_every_model_the_app_loads(tmp_path, monkeypatch):
    """Both places that load a model (the handlers' registry and run_generation) pass the app's memory
    mode to engine.models.load_model, and the engine installs it (offload hooks, VAE tiling/slicing)."""
    import engine.models
    from engine.memory import MemoryMode

    mode = MemoryMode("model", text_encoder_cpu=True, vae_tiling=True, vae_slicing=True)
    real_load, calls = engine.models.load_model, []

    def spy(name=None, *args, memory=None, **kwargs):
        calls.append((name, memory))
        return real_load(name, *args, memory=memory, **kwargs)

    monkeypatch.setattr(engine.models, "load_model", spy)
    monkeypatch.setattr("app.runs.load_model", spy)
    config = AppConfig(
        outputs_root=tmp_path / "outputs",
        warm_up=False,
        offload="model",
        text_encoder_cpu=True,
        vae_tiling=True,
        vae_slicing=True,
    )
    descs = []
    progress = lambda value, desc=None, **_: descs.append(desc)  # noqa: E731
    *_, details = list(
        Handlers(config).generate(PROMPT, None, 5, False, "random-tiny", "1-1-1", progress=progress)
    )[-1]
    assert calls == [("random-tiny", mode), ("random-tiny", mode)]  # one model, loaded in the app's mode
    assert details["memory_mode"] == {
        "offload": "model",
        "text_encoder_cpu": True,
        "vae_tiling": True,
        "vae_slicing": True,
    }
    model = real_load("random-tiny", memory=mode)  # the engine's cached model the run used
    assert model.memory == mode and model.vae.use_tiling and model.vae.use_slicing
    assert hasattr(model.transformer, "_hf_hook") and hasattr(model.vae, "_hf_hook")  # offload hooks
    assert not hasattr(model.pipe.text_encoder, "_hf_hook")  # kept on the CPU, outside the chain
    plain = real_load("random-tiny")  # the default (all off) is another model, without any of it
    assert plain is not model and not plain.vae.use_tiling and not hasattr(plain.transformer, "_hf_hook")
    # The zoo's TinyWanVAE has no tiling/slicing: the engine loads it without them, the rest of the mode
    # kept, in the warm-up (load, then a run) as in a request, so the page's default model stays usable.
    calls.clear()
    handlers = Handlers(config)
    monkeypatch.setattr(handlers.registry, "default", lambda: "pyramidal-wan-tiny")
    handlers.warm_up()
    key, reduced = "pyramidal-wan-tiny", MemoryMode("model", text_encoder_cpu=True)
    assert calls == [(key, mode), (key, mode)]  # one model, requested in the app's mode
    zoo = real_load(key, memory=mode)  # the mode in effect: without the VAE switches
    assert zoo.memory == reduced and hasattr(zoo.transformer, "_hf_hook")
    *_, details = list(handlers.generate(PROMPT, None, 5, False, key, "1-1-1", progress=progress))[-1]
    assert details["memory_mode"] == {
        "offload": "model",
        "text_encoder_cpu": True,
        "vae_tiling": False,
        "vae_slicing": False,
    }


def test_memory_estimate_is_in_the_readout_and_grows_with_the_request(handlers):
    """The engine's estimate (engine/memory.py) for the request, shown before sampling (progress bar) and
    in the readout, the Compare brief and the details; a larger request has a larger estimate."""
    from app.runs import format_gb
    from engine.models import load_model
    from engine.pipeline import make_request

    model = load_model("random-tiny")
    peaks, descs = [], []
    progress = lambda value, desc=None, **_: descs.append((value, desc))  # noqa: E731
    for side in (64, 128):
        descs.clear()
        run = handlers.generate(
            PROMPT, None, 5, False, "random-tiny", "1-1-1", None, 17, side, side, progress=progress
        )
        *_, readout, _, details = list(run)[-1]
        request = make_request(model, PROMPT, schedule="1-1-1", frames=17, height=side, width=side, seed=5)
        expected = model.estimate_peak(request)
        assert details["memory_estimate_gb"]["peak_gb"] == pytest.approx(expected.peak_gb)
        assert details["memory_estimate_gb"]["decode_gb"] == pytest.approx(expected.decode_gb)
        shown = format_gb(expected.peak_gb)
        assert f"estimated peak cpu memory **{shown}** (text {format_gb(expected.text_gb)}" in readout
        assert "offload none;" in readout
        first_step = next(i for i, (value, _) in enumerate(descs) if isinstance(value, tuple))
        assert f"estimated peak cpu memory {shown}" in descs[first_step - 1][1]  # before the first step
        peaks.append((expected.peak_gb, shown))
    (small, small_text), (large, large_text) = peaks
    assert large > 2 * small and small_text != large_text  # 4× the pixels: the decode dominates


def test_compare_brief_shows_the_memory_estimate():
    from app.runs import memory_line

    memory = {
        "device": "cuda",
        "estimate_gb": {"text_gb": 11.4, "transformer_gb": 7.9, "decode_gb": 0.05, "peak_gb": 11.4},
        "mode": {"offload": "none", "text_encoder_cpu": False, "vae_tiling": False, "vae_slicing": True},
    }
    assert memory_line(memory, brief=True) == "estimated peak cuda memory **11.4 GB**"
    assert memory_line(memory).endswith(
        "(text 11.4 GB, sampling 7.9 GB, decoding 50 MB; offload none, sliced VAE; "
        "an estimate, engine/memory.py)"
    )
