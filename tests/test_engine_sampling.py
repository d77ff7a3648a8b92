"""Samplers: events, determinism, plain ≡ 0-0-N, both step rules, and an oracle denoiser."""

import pytest
import torch
from helpers import tiny_wan_transformer

from engine.pyramid import stage_geometry
from engine.sampling import sample, sample_plain
from engine.transitions import downsample


def _zero_denoiser(x, sigma, stage):
    return torch.zeros_like(x)


def _run(denoiser, counts, seed=0, **kw):
    g = stage_geometry(17, 128, 128, latent_channels=4)
    return list(sample(denoiser, g, counts, torch.Generator().manual_seed(seed), **kw))


def test_events_per_step_and_per_stage():
    events = _run(_zero_denoiser, (2, 3, 1))
    kinds = [e.kind for e in events]
    assert kinds.count("step") == 6 and kinds.count("stage_end") == 3 and kinds[-1] == "done"
    ends = [e for e in events if e.kind == "stage_end"]
    assert [e.latent_shape[1:] for e in ends] == [(2, 4, 4), (3, 8, 8), (5, 16, 16)]
    assert [e.pixel_shape for e in ends] == [(5, 32, 32), (9, 64, 64), (17, 128, 128)]
    assert [e.x0.shape[2:] for e in ends] == [(2, 4, 4), (3, 8, 8), (5, 16, 16)]
    assert [e.done_steps for e in events if e.kind == "step"] == [1, 2, 3, 4, 5, 6]
    assert events[-1].x0.shape == (1, 4, 5, 16, 16) and len(events[-1].stage_times) == 3
    assert all(e.elapsed >= 0 for e in events)


def test_leading_zero_stages_start_from_pure_noise():
    events = _run(_zero_denoiser, (0, 2, 1))
    assert [e.stage for e in events if e.kind == "stage_end"] == [1, 2]
    assert events[0].sigma_range[0] == 1.0


def test_plain_is_the_zero_zero_n_schedule():
    g = stage_geometry(17, 128, 128, latent_channels=4)
    den = _affine_denoiser()
    a = list(sample_plain(den, g, 4, torch.Generator().manual_seed(5)))[-1].x0
    b = list(sample(den, g, (0, 0, 4), torch.Generator().manual_seed(5)))[-1].x0
    assert torch.equal(a, b)


def _affine_denoiser():
    w = torch.linspace(-0.5, 0.5, 4).view(1, 4, 1, 1, 1)

    def den(x, sigma, stage):
        return 0.3 * x + w * sigma

    return den


@pytest.mark.parametrize("rule", ["euler", "x0"])
def test_same_seed_is_bit_identical(rule):
    a = _run(_affine_denoiser(), (2, 2, 1), seed=11, step_rule=rule)[-1].x0
    b = _run(_affine_denoiser(), (2, 2, 1), seed=11, step_rule=rule)[-1].x0
    c = _run(_affine_denoiser(), (2, 2, 1), seed=12, step_rule=rule)[-1].x0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_oracle_denoiser_lands_on_the_clean_pyramid():
    """With the exact velocity for a single clean video Y (at each stage its R↓ pyramid level),
    Euler ends every stage on (1−e)·Y_k + e·ε_k and the run on Y exactly."""
    g = stage_geometry(17, 128, 128, latent_channels=4)
    y_full = torch.randn(1, 4, 5, 16, 16, generator=torch.Generator().manual_seed(0))
    targets = [y_full]
    for stage in reversed(g.stages[:-1]):
        targets.insert(0, downsample(targets[0], temporal=stage.temporal_halved))

    def oracle(x, sigma, stage):
        return (x - targets[stage]) / sigma  # v = ε − x0 with ε = (x − (1−σ)x0)/σ ⇒ v = (x − x0)/σ

    events = list(sample(oracle, g, (3, 3, 2), torch.Generator().manual_seed(1)))
    ends = [e for e in events if e.kind == "stage_end"]
    for e, y in zip(ends, targets):
        assert torch.allclose(e.x0, y, atol=1e-4)
    assert torch.allclose(events[-1].x0, y_full, atol=1e-5)


def test_unknown_step_rule():
    with pytest.raises(ValueError, match="step_rule"):
        _run(_zero_denoiser, (1, 1, 1), step_rule="heun")


def test_diffusers_cache_hooks_get_one_context_per_stage():
    """A transformer with a diffusers cache enabled samples across resolutions (DESIGN §10)."""
    from diffusers import FirstBlockCacheConfig

    from engine.sampling import cfg_denoiser

    transformer = tiny_wan_transformer().eval()
    cond, uncond = torch.randn(1, 4, 8), torch.zeros(1, 4, 8)
    plain = _run(cfg_denoiser(transformer, cond, uncond, 3.0), [2, 2, 1])[-1].x0
    transformer.enable_cache(FirstBlockCacheConfig(threshold=0.5))
    assert transformer.is_cache_enabled
    cached = _run(cfg_denoiser(transformer, cond, uncond, 3.0), [2, 2, 1])[-1].x0
    assert cached.shape == plain.shape and torch.isfinite(cached).all()
