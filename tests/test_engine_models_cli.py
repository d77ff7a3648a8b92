"""Loading (random-tiny, diffusers folders, errors), generation end to end, and the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.__main__ import main
from engine.models import ModelLoadError, build_random_tiny, load_model, save_model
from engine.pipeline import make_request, run
from engine.video import read_mp4


@pytest.fixture(scope="module")
def tiny():
    return load_model("random-tiny", device="cpu")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny-wan"
    pipe, card = build_random_tiny()
    return save_model(pipe, card, folder)


def test_generate_is_deterministic_and_reports_stages(tiny):
    req = make_request(tiny, "a red circle moving left", schedule="2-2-1", seed=42)
    a, b = run(tiny, req), run(tiny, req)
    assert np.array_equal(a.frames, b.frames) and a.frames.shape == (17, 128, 128, 3)
    assert [s["steps"] for s in a.stages] == [2, 2, 1]
    assert [s["pixels"] for s in a.stages] == [[5, 32, 32], [9, 64, 64], [17, 128, 128]]
    assert a.total_tflops > 0 and a.request.seed == 42


def test_folder_round_trip_gives_the_same_video(tiny, tiny_folder):
    loaded = load_model(str(tiny_folder), device="cpu")
    assert loaded.card.frames == 17 and loaded.transformer.config.num_layers == 2
    req_a = make_request(tiny, "a blue square", schedule="2-2-1", seed=3)
    req_b = make_request(loaded, "a blue square", schedule="2-2-1", seed=3)
    assert torch.equal(run(tiny, req_a).latents, run(loaded, req_b).latents)


def test_missing_and_corrupt_folders_have_clear_errors(tmp_path, tiny_folder):
    with pytest.raises(ModelLoadError, match="no model folder at"):
        load_model(str(tmp_path / "nowhere"), device="cpu")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="has no tokenizer/ subfolder"):
        load_model(str(broken), device="cpu")
    import shutil

    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_folder, corrupt)
    weights = next((corrupt / "transformer").glob("*.safetensors"))
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="could not load transformer"):
        load_model(str(corrupt), device="cpu")


def test_unknown_words_are_reported(tiny):
    assert tiny.unknown_words("a red zeppelin moving left") == ["zeppelin"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "word " * 2000}, "2000 words"),
        ({"schedule": "20-x-10"}, "not a whole number"),
        ({"height": 100}, "nearest valid: 64 or 128"),
        ({"wavelet": "bogus"}, "unknown wavelet"),
        ({"seed": 2**40}, "seed must be"),
        ({"shared_noise": 1.0}, "shared noise must be at least 0 and below 1"),
        ({"shared_noise": -0.1}, "shared noise must be"),
        ({"shared_noise": float("nan")}, "shared noise"),
    ],
)
def test_bad_requests(tiny, kwargs, message):
    args = {"prompt": "a red circle", **kwargs}
    with pytest.raises(ValueError, match=message):
        make_request(tiny, args.pop("prompt"), **args)


@pytest.mark.parametrize("schedule", ["0-0-4", "2-2-1", "4-4-2"])
def test_cli_generate_writes_a_playable_mp4(tmp_path, capsys, schedule):
    out = tmp_path / f"{schedule}.mp4"
    code = main(
        [
            "generate",
            "--model",
            "random-tiny",
            "--prompt",
            "a red circle moving left",
            "--schedule",
            schedule,
            "--seed",
            "1",
            "--shared-noise",
            "0.5",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"seed", "schedule", "stages", "total_seconds", "total_tflops", "out"} <= set(summary)
    assert summary["schedule"] == schedule and summary["seed"] == 1 and summary["shared_noise"] == 0.5
    assert len(summary["stages"]) == sum(1 for c in schedule.split("-") if c != "0")
    frames = read_mp4(out)
    assert frames.shape == (17, 128, 128, 3)


def test_cli_in_a_subprocess_and_its_errors(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "flops",
            "--model",
            "wan2.1-t2v-1.3b",
            "--frames",
            "81",
            "--height",
            "448",
            "--width",
            "832",
            "--schedule",
            "20-20-10",
            "--cfg",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert abs(round(json.loads(proc.stdout)["total_tflops"] / 2) - 2821) <= 1
    bad = subprocess.run(
        [sys.executable, "-m", "engine", "flops", "--height", "480"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "nearest valid: 448 or 512" in bad.stderr and "Traceback" not in bad.stderr


def test_flops_of_a_model_folder(tiny_folder, capsys):
    assert (
        main(
            [
                "flops",
                "--model",
                str(tiny_folder),
                "--frames",
                "17",
                "--height",
                "128",
                "--width",
                "128",
                "--schedule",
                "2-2-1",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["stages"][2]["tokens"] == 320


def test_cli_failure_while_writing_is_exit_1_in_one_line(tmp_path, capsys):
    (tmp_path / "v.partial.mp4").mkdir()  # passes the --out checks, then ffmpeg cannot write
    argv = ["generate", "--model", "random-tiny", "--prompt", "a red circle", "--schedule", "1-1-1", "--json"]
    assert main([*argv, "--out", str(tmp_path / "v.mp4")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: OSError: could not write the video") and len(err.splitlines()) == 1
    assert not (tmp_path / "v.mp4").exists()


def test_every_cli_flag_has_help():
    from engine.__main__ import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "generate" in a.choices).choices
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"
        assert "DESIGN" not in sub.format_help()


def test_cli_refuses_bad_out_and_device_before_loading(tmp_path, capsys, monkeypatch):

    import engine.models

    # the CLI imports the loader when it needs it (so `flops` never imports diffusers): patch it at home
    monkeypatch.setattr(
        engine.models, "load_model", lambda *a, **k: pytest.fail("loaded a model for a bad value")
    )
    argv = ["generate", "--model", "random-tiny", "--prompt", "a red circle"]
    for extra, message in [
        (["--out", str(tmp_path)], "must end in .mp4"),
        (["--out", str(tmp_path / "a.mp4" / "")], "is a folder"),
        (["--out", "/etc/passwd/v.mp4"], "cannot write into"),
        (["--device", "bogus"], "is not a device"),
        (["--device", "cuda:9"], "cuda"),
    ]:
        if extra == ["--out", str(tmp_path / "a.mp4" / "")]:
            (tmp_path / "a.mp4").mkdir(exist_ok=True)
        assert main([*argv, *extra]) == 2
        assert message in capsys.readouterr().err
