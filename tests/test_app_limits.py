"""Safe under load and bad input (issue 14): the per-request budget, a cancel from gradio_client that frees
the model within one denoising step, and a fuzz of bad inputs through the API and the CLI that leaves
no traceback, no file and a server that still answers."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import replace

import httpx
import pytest
from app_fixtures import PROMPT, running_studio
from gradio_client import Client
from gradio_client.exceptions import AppError

import app.runs
from app.serving import QueueEvent
from engine.__main__ import main as cli_main
from engine.limits import CPU_BUDGET, GPU_BUDGET, host_budget
from engine.models import load_model
from engine.pipeline import make_request

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` skips these for a quick loop


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    with running_studio(tmp_path_factory.mktemp("limits"), workers=2, per_model=1) as s:
        yield s


@pytest.fixture(scope="module")
def client(studio):
    return Client(studio.url, verbose=False)


def files_under(folder) -> list:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


# --- the budget ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, message",
    [
        ((10001, 8192, 8192), "frames 10001 is over the limit of 81"),
        ((17, 8192, 8192), "height 8192 is over the limit of 512"),
        ((17, 1024, 1024), "height 1024 is over the limit of 512"),
        ((17, 512, 512), "needs 1.39 TFLOPs, over the limit of 1 TFLOPs"),
    ],
)
def test_oversized_requests_are_refused_before_allocation_naming_the_limit(shape, message):
    model = load_model("pyramidal-wan-tiny")
    frames, height, width = shape
    with pytest.raises(ValueError) as err:
        make_request(model, PROMPT, frames=frames, height=height, width=width, budget=CPU_BUDGET)
    assert message in str(err.value) and "the largest valid at" in str(err.value)
    largest = str(err.value).split("the largest valid at ")[1].split(" is ")[1].split()[0]
    f, h, w = map(int, largest.split("×"))
    make_request(model, PROMPT, frames=f, height=h, width=w, budget=CPU_BUDGET)  # the suggestion fits


def test_host_budget_kinds_and_overrides(monkeypatch):
    monkeypatch.delenv("PYRAMIDALWAN_BUDGET", raising=False)
    monkeypatch.delenv("PYRAMIDALWAN_MAX_TFLOPS", raising=False)
    assert host_budget() == CPU_BUDGET and host_budget(on_gpu=True) == GPU_BUDGET
    monkeypatch.setenv("PYRAMIDALWAN_BUDGET", "gpu")
    assert host_budget() == GPU_BUDGET
    monkeypatch.setenv("PYRAMIDALWAN_MAX_TFLOPS", "5")
    assert host_budget().max_tflops == 5 and host_budget(max_tflops=7).max_tflops == 7
    for bad in ("nan", "-1", "0", "lots"):
        with pytest.raises(ValueError, match="max TFLOPs must be a positive number"):
            host_budget(max_tflops=bad)
    with pytest.raises(ValueError, match="budget must be one of cpu, gpu"):
        host_budget("tpu")


def test_the_page_offers_only_sizes_inside_the_budget(studio, monkeypatch):
    h = studio.handlers
    monkeypatch.setattr(h, "_budget", replace(CPU_BUDGET, max_tflops=0.05))  # so the compute bound bites
    _, _, frames, height, width, _, _ = h.model_settings("pyramidal-wan-tiny")
    offered = {
        name: [v for _, v in d.choices]
        for name, d in (("frames", frames), ("height", height), ("width", width))
    }
    card = h.registry.card("pyramidal-wan-tiny")
    model = load_model("pyramidal-wan-tiny")
    default = {"frames": card.frames, "height": card.height, "width": card.width}
    for name, values in offered.items():
        assert card.__dict__[name] in values and values == sorted(values)
        for v in values:  # each offered value runs with the card's other defaults
            make_request(model, PROMPT, **{**default, name: v}, budget=h.budget)
        step = 16 if name == "frames" else 64
        with pytest.raises(ValueError, match="over the limit"):  # the next valid value does not
            make_request(model, PROMPT, **{**default, name: max(values) + step}, budget=h.budget)
    assert max(offered["height"]) < CPU_BUDGET.max_side  # the compute bound, not only the side, limits it


def test_oversized_api_request_is_refused_fast_and_leaves_no_folder(client, studio):
    before = files_under(studio.config.outputs_root)
    with pytest.raises(AppError, match="Frames 10001 is over the limit of 81"):
        client.predict(
            PROMPT,
            "",
            1,
            False,
            "pyramidal-wan-tiny",
            "",
            None,
            10001,
            8192,
            8192,
            "haar",
            api_name="/generate",
        )
    # refused by the budget check before anything is allocated (a 167 GB latent would fail otherwise)
    assert files_under(studio.config.outputs_root) == before


# --- cancel from gradio_client ------------------------------------------------------------------------


def test_cancel_from_gradio_client_frees_the_model_within_one_step(client, monkeypatch):
    """A long run (seed 3) pauses after its 3rd step until the server sees the cancel; a second run
    (seed 4) waits for the same model. After the cancel the long run must do no further step and the
    second must start and finish: the model was freed at the first step boundary after the cancel."""
    log: list[tuple[int, object]] = []
    real = app.runs.run_generation

    def recording(*args, **kwargs):
        seed = kwargs["seed"]
        for item in real(*args, **kwargs):
            if isinstance(item, app.runs.Step):
                log.append((seed, item.done))
                if seed == 3 and item.done == 3:
                    event, deadline = QueueEvent(), time.monotonic() + 120
                    while not event.given_up() and time.monotonic() < deadline:
                        time.sleep(0.01)
                    log.append((seed, "cancel seen" if event.given_up() else "cancel never seen"))
            yield item

    monkeypatch.setattr(app.runs, "run_generation", recording)
    long = client.submit(PROMPT, "", 3, False, "random-tiny", "60-60-60", api_name="/generate")
    deadline = time.monotonic() + 120
    while (3, 3) not in log and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (3, 3) in log, log
    other = Client(client.src, verbose=False).submit(
        PROMPT, "", 4, False, "random-tiny", "1-1-1", api_name="/generate"
    )
    canceller = threading.Thread(target=long.cancel)
    canceller.start()
    other_result = other.result(timeout=120)
    canceller.join(timeout=60)
    assert other_result[4]["phase"] == "final" and other_result[4]["seed"] == 4
    assert (3, "cancel seen") in log
    stop = log.index((3, "cancel seen"))
    assert (3, 4) not in log, "the cancelled run went on sampling"
    assert log[stop + 1] == (4, 1), log[stop - 2 : stop + 3]  # the next step on the model is the next run's
    assert len(long.outputs()) < 4  # the cancelled run never reached its video


def test_queue_event_outside_gradio_is_inert():
    event = QueueEvent()
    assert not event.given_up() and abs(event.accepted_at - time.monotonic()) < 5


# --- uploads ------------------------------------------------------------------------------------------


def test_uploads_are_capped(studio):
    url = studio.url.rstrip("/") + "/gradio_api/upload"
    big = httpx.post(url, files={"files": ("big.bin", b"x" * 4096)}, timeout=30)
    assert big.status_code == 413, big.text


# --- fuzz: bad inputs through the API and the CLI -----------------------------------------------------

NUMBERS = [
    math.nan,
    math.inf,
    -math.inf,
    "abc",
    "1e999",
    -1,
    1.5,
    2**64,
    "\x00",
    "../../etc/passwd",
    "🙂",
    [1],
    {"a": 1},
    True,
]
TEXTS = {
    "prompt": ["", "   ", "\n\t ", "x" * 5000, "🙂" * 4500, " ".join(["circle"] * 300)],
    "model": ["../../etc/passwd", "/etc", "\x00", "🙂" * 50, 5, "assets/zoo/../../README.md"],
    "schedule": ["nan-nan-nan", "1e9-1-1", "-1-1-1", "1-1", "🙂", "../", 123, "0-0-0", "inf-1-1"],
    "wavelet": ["../x", "\x00", 7, "haar\n"],
}
API_CASES = [({field: v}, field) for field in ("seed", "frames", "height", "width") for v in NUMBERS]
API_CASES += [({"guidance": v}, "guidance") for v in NUMBERS if v != 1.5]  # 1.5 is a fine guidance
API_CASES += [({field: v}, field) for field, values in TEXTS.items() for v in values]
API_CASES += [({"guidance": v}, "guidance") for v in (-0.5, 30.5, 1e300)]
API_CASES += [({"shared_noise": v}, "shared noise") for v in (-0.1, 1.0, 2, 1e300, "0.5x")]
API_CASES += [({"seed": v}, "seed") for v in (2**32, -(2**40), "7.5")]
API_CASES += [({"frames": v}, "frames") for v in (0, -17, 16, 10**30, "17.5")]
API_CASES += [({"height": v, "width": v}, "size") for v in (0, -64, 100, 8192, 10**12)]

CLI_NUMERIC = [
    "--frames",
    "--height",
    "--width",
    "--guidance",
    "--seed",
    "--shift",
    "--max-tflops",
    "--shared-noise",
]
CLI_VALUES = ["nan", "inf", "-inf", "abc", "1e999", "🙂", "../x", "0x10", "1,5", "\x01"]
CLI_CASES = [[flag, v] for flag in CLI_NUMERIC for v in CLI_VALUES]
CLI_CASES += [[flag, "1.5"] for flag in ("--frames", "--height", "--width", "--seed")]
CLI_CASES += [["--shift", v] for v in ("0", "-1")] + [["--guidance", v] for v in ("-1", "31")]
CLI_CASES += [["--seed", v] for v in ("-1", str(2**32), str(10**40))]
CLI_CASES += [["--device", v] for v in ("bogus", "cuda", "cuda:7", "mps", "", "cpu:x", "../x")]
CLI_CASES += [["--out", v] for v in ("/tmp", "video.avi", "/etc/passwd/x.mp4", "", ".mp4/", "x.MP3")]
CLI_CASES += [["--budget", v] for v in ("tpu", "")] + [["--max-tflops", v] for v in ("0", "-3")]
CLI_CASES += [["--frames", "10001", "--height", "8192", "--width", "8192"], ["--height", "1024"]]
CLI_CASES += [["--schedule", v] for v in ("nan-1-1", "1-1", "🙂", "0-0-0", "999-999-999")]
CLI_CASES += [["--model", v] for v in ("../../etc", "/nonexistent", "\x00", "a/b/c/d")]
CLI_CASES += [["--wavelet", v] for v in ("bogus", "../x")] + [["--step-rule", "nope"], ["--prompt", ""]]


def test_fuzz_counts_at_least_200_bad_inputs():
    assert len(API_CASES) + len(CLI_CASES) >= 200, (len(API_CASES), len(CLI_CASES))


GENERATE_ARGS = [
    "prompt",
    "negative_prompt",
    "seed",
    "randomize_seed",
    "model",
    "schedule",
    "guidance",
    "frames",
    "height",
    "width",
    "wavelet",
    "shared_noise",
]


def raw_generate(url: str, kwargs: dict) -> str | None:
    """/generate over plain HTTP (gradio_client cannot send NaN or Infinity); the error message, or None
    when the request was accepted."""
    data = [kwargs.get(name) for name in GENERATE_ARGS]
    body = json.dumps({"data": data})  # NaN / Infinity as JSON tokens, as a hand-written client sends them
    base = url.rstrip("/") + "/gradio_api/call/generate"
    event_id = httpx.post(
        base, content=body, headers={"content-type": "application/json"}, timeout=30
    ).json()["event_id"]
    stream = httpx.get(f"{base}/{event_id}", timeout=120).text
    if "event: error" not in stream:
        return None
    payload = stream.split("event: error", 1)[1].split("data:", 1)[1].strip().splitlines()[0]
    return str(json.loads(payload) or "").strip()


def test_fuzzed_api_inputs_get_one_line_errors_no_files_and_the_server_keeps_answering(client, studio):
    before = files_under(studio.config.outputs_root)
    base = {"prompt": PROMPT, "seed": 1, "randomize_seed": False, "model": "random-tiny", "schedule": "1-1-1"}
    failures = []
    for change, _ in API_CASES:
        message = raw_generate(studio.url, {**base, **change})
        if not message or "\n" in message or "Traceback" in message or "Internal error" in message:
            failures.append((change, message))
    for n_runs in (0, 5, "x", 2.5, -1):
        with pytest.raises(AppError) as err:
            client.predict(PROMPT, "", 1, False, n_runs, api_name="/compare")
        assert str(err.value).strip() and "Traceback" not in str(err.value)
    assert not failures, failures
    assert files_under(studio.config.outputs_root) == before
    assert raw_generate(studio.url, base) is None  # the same path accepts a good request
    outputs = client.predict(api_name="/generate", **base)  # still answering, and still right
    assert outputs[4]["phase"] == "final"


@pytest.mark.parametrize("extra", CLI_CASES, ids=[" ".join(c)[:40] for c in CLI_CASES])
def test_fuzzed_cli_inputs_exit_2_with_one_line_and_write_nothing(extra, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["generate", "--prompt", PROMPT, "--model", "random-tiny", "--schedule", "1-1-1", *extra]
    try:
        code = cli_main(argv)
    except SystemExit as exit_:  # argparse refused the value
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []
