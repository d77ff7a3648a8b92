"""bench.guidance_interval: guidance acts exactly inside its σ interval, the engine is restored after the
block, and a bad interval is one line and exit code 2."""

import pytest
import torch

import engine.pipeline
from bench.guidance_interval import guidance_interval, main
from bench.toybench import generate_one
from engine.models import load_model

PROMPT = "a red circle moving left on a black background"


@pytest.fixture(scope="module")
def model():
    return load_model("random-tiny", device="cpu", dtype="float32")


def video(model, guidance):
    return generate_one(model, PROMPT, "1-1-2", seed=3, guidance=guidance, size=(17, 64, 64))[0]


def test_the_interval_decides_where_guidance_acts(model):
    guided, conditional = video(model, 4.0), video(model, 1.0)
    assert not torch.equal(guided, conditional)  # guidance changes this model's output at all
    with guidance_interval(0.0, 1.0):  # every step inside: the engine's own guided run
        assert torch.equal(video(model, 4.0), guided)
    with guidance_interval(0.0, 0.0):  # no step inside (σ = 0 is never evaluated): conditional only
        assert torch.equal(video(model, 4.0), conditional)
    with guidance_interval(0.0, 0.5):  # some steps inside: neither
        partly = video(model, 4.0)
    assert not torch.equal(partly, guided) and not torch.equal(partly, conditional)
    assert engine.pipeline.cfg_denoiser is engine.sampling.cfg_denoiser  # restored


def test_a_bad_interval_is_refused(capsys):
    assert main(["--min-sigma", "0.8", "--max-sigma", "0.5", "--model", "random-tiny", "--n", "1"]) == 2
    assert "min sigma" in capsys.readouterr().err
    with pytest.raises(ValueError), guidance_interval(0.5, 1.5):
        pass
