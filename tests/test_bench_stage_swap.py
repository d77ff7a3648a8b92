"""bench.stage_swap: at each stage of a pyramid the transformer assigned to it, at its own guidance."""

import copy

import numpy as np
import pytest
import torch

from bench.stage_swap import StageSwap, swapped_model
from engine.flow import guidance_mix
from engine.models import load_model
from engine.pipeline import make_request, run

SHAPES = [(1, 2, 2), (1, 4, 4), (2, 8, 8)]


def _perturbed(transformer):
    other = copy.deepcopy(transformer)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return other


def _call(net, x, text, t):
    with torch.no_grad():
        return net(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]


def test_stage_swap_runs_each_stages_transformer_by_the_latents_size():
    low = load_model("random-tiny", device="cpu").transformer
    high = _perturbed(low)
    swap = StageSwap([low, high, low], SHAPES)
    text = torch.randn(1, 4, low.config.text_dim)
    t = torch.tensor([500.0])
    for shape, want in zip(SHAPES, (low, high, low)):
        x = torch.randn(1, low.config.in_channels, *shape)
        got, other = _call(swap, x, text, t), _call(low if want is high else high, x, text, t)
        assert torch.equal(got, _call(want, x, text, t))
        assert not torch.allclose(got, other)  # the two really differ, so the dispatch is what is tested
    with pytest.raises(ValueError, match="matches no stage"):
        _call(swap, torch.randn(1, low.config.in_channels, 1, 3, 3), text, t)
    with pytest.raises(ValueError, match="cannot be told apart"):
        StageSwap([low, high], [(1, 4, 4), (1, 4, 4)])
    with pytest.raises(ValueError, match="guided sampler"):
        StageSwap([low, high], SHAPES[:2], [1.0, 3.0], sampler_guidance=1.0)


@pytest.mark.parametrize("g", [1.0, 2.0, 3.0])
def test_each_stage_is_guided_at_its_own_scale_through_the_samplers_mix(g):
    """The sampler runs [x, x] with [cond, uncond] and mixes at its own G = 3; a stage at scale g must come
    out of that mix as v_u + g·(v_c − v_u) of its own transformer."""
    net = load_model("random-tiny", device="cpu").transformer
    swap = StageSwap([net], SHAPES[1:2], [g], sampler_guidance=3.0)
    x = torch.randn(2, net.config.in_channels, *SHAPES[1])
    text = torch.randn(2, 4, net.config.text_dim)
    t = torch.tensor([400.0, 400.0])
    cond, uncond = text[:1], text[1:]
    x = torch.cat([x[:1], x[:1]])  # as cfg_denoiser builds the batch
    v = _call(swap, x, torch.cat([cond, uncond]), t)
    mixed = guidance_mix(v[:1], v[1:], 3.0)
    v_cond, v_uncond = _call(net, x[:1], cond, t[:1]), _call(net, x[:1], uncond, t[:1])
    torch.testing.assert_close(mixed, v_uncond + g * (v_cond - v_uncond), rtol=1e-4, atol=1e-5)


def test_a_model_swapped_with_itself_samples_exactly_as_the_model_and_leaves_it_untouched():
    model = load_model("random-tiny", device="cpu")
    original = model.transformer
    swapped = swapped_model("random-tiny", "random-tiny", "LHL", own_guidance=True)
    assert isinstance(swapped.transformer, StageSwap) and model.transformer is original
    assert swapped.card.guidance == model.card.guidance
    a = run(model, make_request(model, "a red circle moving left", schedule="2-2-1", seed=3))
    b = run(swapped, make_request(swapped, "a red circle moving left", schedule="2-2-1", seed=3))
    np.testing.assert_array_equal(a.frames, b.frames)
    with pytest.raises(ValueError, match="letters L or H"):
        swapped_model("random-tiny", "random-tiny", "LH")
