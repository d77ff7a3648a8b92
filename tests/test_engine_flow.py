"""The flow-matching conventions users rely on (engine/flow.py, DESIGN §2): the direction of the guidance
mix where the sampler and the distiller apply it, one initial noise per seed for every schedule (the
Compare tab's promise), training σ, text masking, latent normalisation; the model registry; and
`python -m engine flops` without diffusers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from engine.flow import (
    PLAIN_BASELINE,
    clean_estimate,
    denormalise_latents,
    guidance_mix,
    logit_normal,
    masked_text,
    noisy,
    normalise_latents,
    plain_counts,
    timestep,
    velocity_target,
)
from engine.sampling import cfg_denoiser, noise_pyramid, shared_noise_levels
from engine.zoo import CARD_FILE, ModelLoadError, ModelRegistry


class TextEcho(torch.nn.Module):
    """A stand-in transformer whose velocity is the mean of its text embedding (so the conditional and
    the unconditional pass give different, known velocities) and which records the timesteps it got."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.timesteps = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict=False):
        self.timesteps.append(timestep)
        level = encoder_hidden_states.float().mean(dim=(1, 2)).view(-1, 1, 1, 1, 1)
        return (torch.zeros_like(hidden_states) + level,)


def test_guidance_mix_moves_away_from_the_unconditional_velocity():
    cond, uncond = torch.full((2, 3), 1.0), torch.full((2, 3), 0.25)
    assert torch.equal(guidance_mix(cond, uncond, 1.0), cond)
    assert torch.equal(guidance_mix(cond, uncond, 0.0), uncond)
    assert torch.allclose(guidance_mix(cond, uncond, 3.0), torch.full((2, 3), 0.25 + 3 * 0.75))


@pytest.mark.parametrize("guidance", [1.0, 3.0, 5.0])
def test_sampler_and_distiller_guide_towards_the_prompt(guidance):
    """cfg_denoiser batches [cond; uncond]: a swapped split would give v_cond + g·(v_uncond − v_cond)."""
    from trainers.distill import guided_velocity

    net = TextEcho()
    cond, uncond = torch.full((1, 4, 8), 1.0), torch.full((1, 4, 8), -1.0)
    x = torch.randn(1, 4, 2, 4, 4)
    expected = -1.0 + guidance * 2.0
    v = cfg_denoiser(net, cond, uncond, guidance)(x, 0.3, 0)
    assert torch.allclose(v, torch.full_like(x, expected))
    assert torch.allclose(net.timesteps[-1], torch.full_like(net.timesteps[-1], 300.0))
    v = guided_velocity(net, x, torch.tensor([0.3]), cond, uncond, guidance)
    assert torch.allclose(v, torch.full_like(x, expected))


@pytest.mark.parametrize("share", [0.0, 0.8])
def test_same_seed_gives_every_schedule_the_same_initial_noise(share):
    """The Compare tab runs several schedules with one seed and promises they share their noise: the first
    transformer input of each is the same full-resolution draw, projected to the first active stage, with
    (share > 0) the same frame-common draw after it, projected spatially (DESIGN §6b)."""
    from engine.models import load_model
    from engine.pipeline import generate, make_request

    model = load_model("pyramidal-wan-tiny", device="cpu")
    seen = []
    hook = model.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["hidden_states"][:1].clone()), with_kwargs=True
    )

    def first_input(schedule: str, seed: int = 7) -> torch.Tensor:
        request = make_request(
            model,
            "a red circle moving left on a black background",
            schedule=schedule,
            seed=seed,
            shared_noise=share,
        )
        stream = generate(model, request)
        next(stream)  # one step is enough: its input is the initial noise
        stream.close()
        return seen[-1].float()

    try:
        full = first_input("0-0-50")
        plain = [first_input(s) for s in ("0-0-1", "0-0-4")]
        middle = [first_input(s) for s in ("0-2-1", "0-1-1")]
        low = [first_input(s) for s in ("20-20-10", "2-2-1", "1-1-1")]
        other_seed = first_input("0-0-50", seed=8)
    finally:
        hook.remove()
    request = make_request(model, "x", schedule="2-2-1", seed=7)
    generator = torch.Generator().manual_seed(7)
    draw = torch.randn((1, *request.geometry.full.latent_shape), generator=generator)
    levels = shared_noise_levels(noise_pyramid(draw, request.geometry, request.wavelet), share, generator)
    assert all(torch.equal(x, levels[2]) for x in [full, *plain])
    assert all(torch.equal(x, levels[1]) for x in middle)
    assert all(torch.equal(x, levels[0]) for x in low)
    assert not torch.equal(other_seed, full)
    assert abs(float(full.std()) - 1) < 0.1  # unit noise, not a scaled or shifted copy
    frames = torch.corrcoef(torch.stack([full[:, :, 0].flatten(), full[:, :, -1].flatten()]))[0, 1]
    assert abs(float(frames) - share) < 0.2


def test_forward_process_velocity_and_clean_estimate_agree():
    x0, eps, sigma = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4), torch.tensor([0.2, 0.9])
    s = sigma.view(-1, 1, 1, 1, 1)
    x = noisy(x0, eps, s)
    assert torch.allclose(clean_estimate(x, velocity_target(x0, eps), s), x0, atol=1e-6)
    assert torch.allclose(noisy(x0, eps, 1.0), eps) and torch.allclose(noisy(x0, eps, 0.0), x0)
    assert timestep(0.25) == 250.0 and torch.equal(timestep(sigma), torch.tensor([200.0, 900.0]))
    assert plain_counts() == (0, 0, 50) and PLAIN_BASELINE == "0-0-50" and plain_counts(2, 4) == (0, 4)


def test_training_sigma_is_logit_normal_with_the_timestep_shift():
    """P(σ > 0.85) is 4.1% for sigmoid(N(0, 1)) and 26.2% after the shift s = 3 (DESIGN §2)."""
    plain = logit_normal(200_000, torch.Generator().manual_seed(0))
    shifted = logit_normal(200_000, torch.Generator().manual_seed(0), shift=3.0)
    assert plain.shape == (200_000,) and 0 < float(plain.min()) and float(plain.max()) < 1
    assert float((plain > 0.85).float().mean()) == pytest.approx(0.0414, abs=0.003)
    assert float((shifted > 0.85).float().mean()) == pytest.approx(0.2624, abs=0.005)
    assert float(plain.median()) == pytest.approx(0.5, abs=0.01)


def test_text_masking_zeroes_positions_past_each_caption():
    hidden = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    out = masked_text(hidden, mask)
    assert torch.equal(out[0, :2], hidden[0, :2]) and not out[0, 2:].any()
    assert torch.equal(out[1, :4], hidden[1, :4]) and not out[1, 4:].any()


def test_latent_normalisation_is_per_channel_and_inverted_by_decoding():
    config = SimpleNamespace(latents_mean=[1.0, -2.0], latents_std=[2.0, 0.5])
    z = torch.randn(3, 2, 2, 4, 4)
    n = normalise_latents(z, config)
    assert torch.allclose(n[:, 0], (z[:, 0] - 1.0) / 2.0) and torch.allclose(n[:, 1], (z[:, 1] + 2.0) / 0.5)
    assert torch.allclose(denormalise_latents(n, config), z, atol=1e-6)


def _variant(zoo, name: str, card: dict | str) -> None:
    (zoo / name / "transformer").mkdir(parents=True)
    (zoo / name / CARD_FILE).write_text(card if isinstance(card, str) else json.dumps(card))


def test_registry_resolves_names_without_reading_cards_and_reads_each_card_once(tmp_path):
    zoo = tmp_path / "zoo"
    _variant(zoo, "a", {"description": "first", "schedule": "2-2-1"})
    _variant(zoo, "broken", "{not json")
    registry = ModelRegistry(zoo, model_dirs=[str(tmp_path / "mine")])
    assert registry.names() == ["a", "broken", "random-tiny", str(tmp_path / "mine")]
    assert registry.resolve(None) == registry.resolve(" ") == "a"  # no pyramidal-wan-tiny here: the first
    assert registry.resolve("broken") == "broken"  # resolving does not read the card
    with pytest.raises(ValueError, match="unknown model 'b'; choose one of: a, broken, random-tiny"):
        registry.resolve("b")
    with pytest.raises(ModelLoadError, match="is not valid"):
        registry.card("broken")
    assert registry.locate("a") == str(zoo / "a") and registry.locate("elsewhere") == "elsewhere"
    first = registry.card("a")
    assert first.schedule == "2-2-1" and registry.card("a") is first  # read once
    card = zoo / "a" / CARD_FILE
    card.write_text(json.dumps({"description": "second"}))
    os.utime(card, ns=(card.stat().st_atime_ns, card.stat().st_mtime_ns + 1_000_000_000))
    assert registry.card("a").description == "second"  # a changed card is read again


def test_flops_command_answers_without_importing_diffusers():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['engine', 'flops', '--schedule', '20-20-10']\n"
        "try:\n"
        "    runpy.run_module('engine', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print('loaded:', sorted(m for m in ('diffusers', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "20-20-10: 2,820.3 TFLOPs" in out and "loaded: []" in out
