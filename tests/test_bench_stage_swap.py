"""bench.stage_swap: one transformer below full resolution, another at it."""

import copy

import numpy as np
import torch

from bench.stage_swap import StageSwap, swapped_model
from engine.models import load_model
from engine.pipeline import make_request, run


def _perturbed(transformer):
    other = copy.deepcopy(transformer)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return other


def test_stage_swap_runs_the_high_transformer_only_at_full_width():
    low = load_model("random-tiny", device="cpu").transformer
    high = _perturbed(low)
    swap = StageSwap(low, high, full_width=8)
    text = torch.randn(1, 4, low.config.text_dim)
    t = torch.tensor([500.0])
    for width, want in ((8, high), (4, low)):
        x = torch.randn(1, low.config.in_channels, 2, width, width)
        kwargs = dict(timestep=t, encoder_hidden_states=text, return_dict=False)
        with torch.no_grad():
            got = swap(hidden_states=x, **kwargs)[0]
            expected = want(hidden_states=x, **kwargs)[0]
            other = (low if want is high else high)(hidden_states=x, **kwargs)[0]
        assert torch.equal(got, expected)
        assert not torch.allclose(got, other)  # the two really differ, so the dispatch is what is tested


def test_a_model_swapped_with_itself_samples_exactly_as_the_model_and_leaves_it_untouched():
    model = load_model("random-tiny", device="cpu")
    original = model.transformer
    swapped = swapped_model("random-tiny", "random-tiny")
    assert isinstance(swapped.transformer, StageSwap) and model.transformer is original
    a = run(model, make_request(model, "a red circle moving left", schedule="2-2-1", seed=3))
    b = run(swapped, make_request(swapped, "a red circle moving left", schedule="2-2-1", seed=3))
    np.testing.assert_array_equal(a.frames, b.frames)
