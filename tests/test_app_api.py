"""The web app through its named API endpoints (gradio_client against an app launched in this process)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from app_fixtures import PROMPT, running_studio
from gradio_client import Client
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError
from PIL import Image

from app.runs import PREVIEW_HEIGHT
from engine.flops import TERA, schedule_flops
from engine.models import load_model
from engine.pipeline import make_request
from engine.video import read_mp4
from engine.zoo import default_model_name

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` skips these for a quick loop

MISSING = "/nonexistent/Wan2.1-T2V-1.3B-Diffusers"


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    with running_studio(tmp_path_factory.mktemp("app"), model_dirs=[MISSING]) as s:
        yield s


@pytest.fixture(scope="module")
def client(studio):
    return Client(studio.url, verbose=False)


def generate(client: Client, **kwargs):
    args = {"prompt": PROMPT, "seed": 7, "randomize_seed": False, "model": "random-tiny", **kwargs}
    job = client.submit(api_name="/generate", **args)
    job.result(timeout=240)
    return job.outputs()


def is_h264(path: str) -> bool:
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", path], capture_output=True, text=True
    )
    return "Video: h264" in probe.stderr


@pytest.mark.parametrize("schedule", ["2-2-1", "20-20-10"])
def test_generate_streams_one_update_per_stage_then_the_video(client, schedule):
    outputs = generate(client, schedule=schedule)
    assert len(outputs) == 4, [o[4]["phase"] for o in outputs]  # 3 stage previews + the final video

    for k, (gallery, video, _, seed, details) in enumerate(outputs[:3]):
        assert video is None and seed == 7 and details["phase"] == "stage"
        assert [item["caption"].split(" · ")[0] for item in gallery] == [f"stage {i}" for i in range(k + 1)]
        assert (" 1 step · σ" if schedule == "2-2-1" and k == 2 else "steps · σ") in gallery[k]["caption"]
    captions = [item["caption"] for item in outputs[-1][0]]
    assert "latent 2×4×4 · 5×32×32 px" in captions[0] and "latent 5×16×16 · 17×128×128 px" in captions[2]

    # Each preview is decoded at its stage's own resolution: stage 0 (32 px) shown at 128 px has 4×4 blocks.
    sheet = np.asarray(Image.open(outputs[-1][0][0]["image"]).convert("RGB")).astype(int)
    assert sheet.shape[0] == PREVIEW_HEIGHT
    frame = sheet[:, :PREVIEW_HEIGHT]
    assert np.array_equal(frame, np.repeat(np.repeat(frame[::4, ::4], 4, axis=0), 4, axis=1))

    gallery, video, readout, seed, details = outputs[-1]
    assert details["phase"] == "final" and details["schedule"] == schedule and seed == 7
    assert Path(video).suffix == ".mp4" and is_h264(video)
    assert read_mp4(video).shape == (17, 128, 128, 3)
    model = load_model("random-tiny")
    request = make_request(model, PROMPT, schedule=schedule)
    expected = sum(schedule_flops(request.geometry, request.counts, model.size, cfg=True)) / TERA
    assert details["total_tflops"] == pytest.approx(expected)
    plain = sum(schedule_flops(request.geometry, (0, 0, 50), model.size, cfg=True)) / TERA
    assert details["ratio_to_plain"] == pytest.approx(expected / plain)
    assert [row["stage"] for row in details["stages"]] == [0, 1, 2]
    assert all(row["seconds"] >= 0 for row in details["stages"])
    assert 0 < details["first_preview_seconds"] < details["elapsed_seconds"]
    assert "seconds" in readout and f"{100 * expected / plain:.1f}%" in readout
    peak = model.estimate_peak(request).peak_gb  # the engine's estimate, in the app's (default) memory mode
    assert details["memory_estimate_gb"]["peak_gb"] == pytest.approx(peak)
    assert details["memory_mode"]["offload"] == "none" and "estimated peak cpu memory **" in readout


def test_generate_plain_schedule_has_one_stage_and_a_random_seed_is_reported(client):
    outputs = generate(client, schedule="0-0-2", randomize_seed=True)
    assert len(outputs) == 2
    gallery, video, _, seed, details = outputs[-1]
    assert len(gallery) == 1 and gallery[0]["caption"].startswith("stage 2")
    assert details["seed"] == seed and isinstance(seed, int) and video.endswith(f"0-0-2-seed{seed}.mp4")
    assert details["video"] == f"0-0-2-seed{seed}.mp4"  # a name, not the server's path


def test_shared_noise_reaches_the_engine_and_is_reported(client):
    """The same seed with and without noise shared across frames: a different video, and the share used
    in the details (empty: the card's default, 0 for random-tiny)."""
    *_, video_0, _, _, details_0 = generate(client, schedule="0-0-1")[-1]
    *_, video_s, _, _, details_s = generate(client, schedule="0-0-1", shared_noise=0.9)[-1]
    assert details_0["shared_noise"] == 0.0 and details_s["shared_noise"] == 0.9
    assert not np.array_equal(read_mp4(video_0), read_mp4(video_s))


def test_unknown_words_are_reported(client):
    *_, details = generate(client, prompt="a red zebra moving left", schedule="1-1-1")[-1]
    assert details["unknown_words"] == ["zebra"]


def test_compare_returns_one_result_per_requested_run(client):
    result = client.predict(
        PROMPT,
        "",
        11,
        False,
        3,
        "2-2-1",
        "random-tiny",
        "0-0-1",
        "random-tiny",
        "1-1-1",
        None,
        "0-0-4",
        None,
        api_name="/compare",
    )
    summary, runs, *slots = result
    assert [r["schedule"] for r in runs] == ["2-2-1", "0-0-1", "1-1-1"]
    assert {r["seed"] for r in runs} == {11} and all(r["phase"] == "final" for r in runs)
    assert runs[1]["ratio_to_plain"] == pytest.approx(1 / 50)
    for i in range(3):
        gallery, video, brief = slots[3 * i : 3 * i + 3]
        assert len(gallery) == (1 if runs[i]["schedule"] == "0-0-1" else 3)
        assert read_mp4(video).shape[0] == 17 and runs[i]["schedule"] in brief
        assert "estimated peak cpu memory" in brief and runs[i]["memory_estimate_gb"]["peak_gb"] > 0
    assert not slots[9] and slots[10] is None and slots[11] == ""  # the 4th slot was not requested
    default = default_model_name()  # the third run names no model: the app's default
    assert summary.count("| random-tiny |") == 2 + (default == "random-tiny") and f"| {default} |" in summary


BAD_GENERATE = [
    ({"prompt": ""}, "prompt is empty"),
    ({"prompt": " ".join(["circle"] * 2000)}, "2000 words"),
    ({"schedule": "20-x-10"}, "'x' is not a whole number"),
    ({"schedule": "0-0-0"}, "needs at least 1 step"),
    ({"schedule": "1000-1000-1000"}, "at most 200 steps"),
    ({"schedule": "2-2"}, "has 2 step count(s) but the pyramid has 3 stages"),
    ({"model": MISSING}, "no model folder"),
    ({"model": "no-such-model"}, "unknown model 'no-such-model'"),
    ({"height": 100}, "nearest valid: 64 or 128"),
    ({"frames": 20}, "nearest valid: 17 or 33"),
    ({"guidance": 99}, "guidance must be between 0 and 30, got 99"),
    ({"wavelet": "bior2.2"}, "wavelet"),
    ({"shared_noise": 1}, "shared noise must be at least 0 and below 1, got 1"),
]


@pytest.mark.parametrize("change,message", BAD_GENERATE, ids=[m for _, m in BAD_GENERATE])
def test_bad_generate_input_is_a_readable_error(client, change, message):
    with pytest.raises(AppError) as err:
        generate(client, **{"schedule": "1-1-1", **change})
    assert message.lower() in str(err.value).lower()
    assert "Traceback" not in str(err.value)


def test_bad_compare_input_names_the_run(client):
    with pytest.raises(AppError, match="(?i)run 2: schedule '20-x-10'"):
        client.predict(
            PROMPT,
            "",
            1,
            False,
            2,
            "1-1-1",
            None,
            "20-x-10",
            None,
            None,
            None,
            None,
            None,
            api_name="/compare",
        )


def test_missing_model_folder_is_listed_but_says_why(studio):
    labels = dict((key, label) for label, key in studio.handlers.registry.choices())
    assert "folder not found" in labels[MISSING] and "random-tiny" in labels


def test_two_users_at_once_both_get_their_own_video(studio):
    results, errors = {}, []

    def user(seed: int) -> None:
        try:
            results[seed] = generate(Client(studio.url, verbose=False), schedule="4-4-2", seed=seed)[-1]
        except Exception as err:  # surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=user, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors and set(results) == {1, 2}
    videos = [results[s][1] for s in (1, 2)]
    assert videos[0] != videos[1] and all(Path(v).is_file() for v in videos)
    assert [results[s][4]["seed"] for s in (1, 2)] == [1, 2]
    # Each request wrote into its own folder under the outputs root.
    folders = [p for p in studio.config.outputs_root.iterdir() if p.is_dir()]
    assert len(folders) >= 2


def test_cancelled_run_stops_and_frees_the_model(client):
    job = client.submit(PROMPT, "", 3, False, "random-tiny", "60-60-60", api_name="/generate")
    deadline = time.time() + 120
    while not job.outputs() and time.time() < deadline:
        time.sleep(0.05)
    assert job.outputs(), "no stage preview arrived"
    job.cancel()
    start = time.time()
    outputs = generate(client, schedule="1-1-1")  # the model's slot was released
    assert outputs[-1][4]["phase"] == "final" and time.time() - start < 120
    assert len(job.outputs()) < 4  # the cancelled run never reached its video


def test_queue_is_bounded(tmp_path):
    with running_studio(tmp_path, queue_size=1, workers=1) as small:
        client = Client(small.url, verbose=False)
        jobs = [client.submit(PROMPT, api_name="/generate", schedule="20-20-10") for _ in range(4)]
        outcomes = []
        for job in jobs:
            try:
                job.result(timeout=240)
                outcomes.append("ok")
            except QueueError as err:
                assert "Queue is full" in str(err)
                outcomes.append("full")
    assert outcomes.count("ok") >= 1 and outcomes.count("full") >= 1, outcomes
