"""Samplers: events, determinism, plain ≡ 0-0-N, both step rules, the stage path (DESIGN §6a) and a
point-mass oracle (the Gaussian oracle is in test_gaussian_oracle.py)."""

import pytest
import torch
from helpers import tiny_wan_transformer

from engine.flow import stage_clean, stage_kappa, stage_point, stage_velocity
from engine.pyramid import stage_geometry
from engine.sampling import sample, sample_plain
from engine.schedule import schedule_sigmas
from engine.transitions import downsample, project_low, upsample


def _zero_denoiser(x, sigma, stage):
    return torch.zeros_like(x)


def _run(denoiser, counts, seed=0, **kw):
    g = stage_geometry(17, 128, 128, latent_channels=4)
    return list(sample(denoiser, g, schedule_sigmas(g, counts), torch.Generator().manual_seed(seed), **kw))


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
    b = list(sample(den, g, schedule_sigmas(g, (0, 0, 4)), torch.Generator().manual_seed(5)))[-1].x0
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


def _clean_pyramid(g, seed=0, batch=1):
    """One clean video Y (its R↓ pyramid, low → high) and U_k = R↑(Y_(k−1)) for every stage."""
    y = [
        torch.randn(1, 4, 5, 16, 16, generator=torch.Generator().manual_seed(seed)).expand(
            batch, -1, -1, -1, -1
        )
    ]
    for stage in reversed(g.stages[:-1]):
        y.insert(0, downsample(y[0], temporal=stage.temporal_halved))
    lower = [None] + [upsample(y[k - 1], temporal=g.stages[k - 1].temporal_halved) for k in range(1, 3)]
    return y, lower


@pytest.mark.parametrize("rule", ["euler", "x0"])
def test_point_mass_oracle_gives_the_stage_clean_signal_at_every_step(rule):
    """Data = one clean video Y. The exact pyramidal velocity at x on stage k's path is the path's
    velocity with the noise that x implies, ε = (x − (1−ρ)(1−σe)·Y_k − ρ(1−σs)·U_k)/σ. Then every step's
    clean estimate is exactly Y_k, the stage ends on (1−σe)·Y_k + σe·ε with ε unit noise in every band,
    and the run ends on Y.
    Checked by hand: fails without κ (both rules: the middle stage's estimate is κ·Y_1 + (1−κ)·U_1),
    without the jump (Euler: the implied noise after plain upsampling has variance 0.60, 0.12 without the
    detail noise) and without the stage-exact renoise (x0 rule: the renoised latent leaves the path, its
    implied noise has variance 1.42). The old oracle v = (x − Y_k)/σ made x − σ·v ≡ Y_k by construction
    and could detect none of these."""
    g = stage_geometry(17, 128, 128, latent_channels=4)
    y, lower = _clean_pyramid(g, batch=64)
    starts = [1.0, g.stages[1].sigma_start, g.stages[2].sigma_start]

    def oracle(x, sigma, k):
        path = (starts[k], g.stages[k].sigma_end)
        eps = (x - stage_point(y[k], lower[k], torch.zeros_like(x), sigma, *path)) / sigma
        return stage_velocity(y[k], lower[k], eps, *path)

    sigmas = schedule_sigmas(g, (3, 3, 2))
    events = list(sample(oracle, g, sigmas, torch.Generator().manual_seed(1), 64, step_rule=rule))
    for e in events[:-1]:
        assert torch.allclose(e.x0, y[e.stage], atol=1e-4), (e.kind, e.stage, e.step)
    for e in (e for e in events if e.kind == "step" and e.sigma > 0):
        path = (starts[e.stage], g.stages[e.stage].sigma_end)
        eps = (e.latent - stage_point(y[e.stage], lower[e.stage], 0.0, e.sigma, *path)) / e.sigma
        bands = {"all": (eps, eps[0].numel())}
        if e.stage:  # the detail band has d − d_low dimensions
            detail = eps - project_low(eps, temporal=g.stages[e.stage - 1].temporal_halved)
            bands["detail"] = (detail, eps[0].numel() - y[e.stage - 1][0].numel())
        for name, (z, dims) in bands.items():
            # ≥ 64·128 unit-variance values: the variance estimate's sd is ≤ 0.016, so ±0.08 is 5 sd
            var = float(z.pow(2).sum() / (z.shape[0] * dims))
            assert abs(var - 1) < 0.08, (e.stage, e.step, name, var)
    assert torch.allclose(events[-1].x0, y[-1], atol=1e-4)


def test_stage_clean_and_stage_point_follow_design_6a():
    """x − σ·v = κ·Y + (1−κ)·U on the stage's path (κ ≈ 1.097 in the default middle stage), stage_clean
    recovers Y from it, and a stage below σ = 1 refuses to guess U."""
    g = stage_geometry(17, 64, 64, latent_channels=4)
    s_start, s_end = g.stages[1].sigma_start, g.stages[1].sigma_end
    kappa = stage_kappa(s_start, s_end)
    assert kappa == pytest.approx(1.09696, abs=1e-4)
    assert stage_kappa(1.0, s_end) == 1.0 and stage_kappa(g.stages[2].sigma_start, 0.0) == 1.0
    y, u, eps = torch.randn(3, 2, 4, 3, 4, 4).double()
    sigma = torch.tensor([0.4, 0.6]).view(-1, 1, 1, 1, 1).double()
    x = stage_point(y, u, eps, sigma, s_start, s_end)
    v = stage_velocity(y, u, eps, s_start, s_end)
    assert torch.allclose(x - sigma * v, kappa * y + (1 - kappa) * u)
    assert torch.allclose(stage_clean(x, v, u, sigma, s_start, s_end), y)
    # the path's ends: E at σe, B at σs
    assert torch.allclose(stage_point(y, u, eps, s_end, s_start, s_end), (1 - s_end) * y + s_end * eps)
    assert torch.allclose(stage_point(y, u, eps, s_start, s_start, s_end), (1 - s_start) * u + s_start * eps)
    with pytest.raises(ValueError, match="lower-stage signal"):
        stage_clean(x, v, None, sigma, s_start, s_end)


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


@pytest.mark.parametrize("counts", [(2, 2, 1), (0, 0, 2)])
def test_shared_noise_correlates_the_starting_frames_and_keeps_unit_noise(counts):
    starts = []

    def recording(x, sigma, stage):
        if not starts:
            starts.append(x.clone())
        return torch.zeros_like(x)

    _run(recording, counts, shared_noise=0.7, batch_size=1500)
    x = starts[0]  # (1500, 4, T, H, W) at the first active stage's resolution
    assert abs(x.var().item() - 1) < 0.03 and abs(x.mean().item()) < 0.02
    first, last = x[:, :, 0].flatten(), x[:, :, -1].flatten()
    assert abs(torch.corrcoef(torch.stack([first, last]))[0, 1].item() - 0.7) < 0.02
    neighbours = x[..., 0, 0].flatten(), x[..., 0, 1].flatten()  # pixels stay independent
    assert abs(torch.corrcoef(torch.stack(neighbours))[0, 1].item()) < 0.03


def test_shared_noise_zero_draws_the_same_run_and_out_of_range_is_refused():
    a = _run(_affine_denoiser(), (2, 2, 1), seed=3)[-1].x0
    b = _run(_affine_denoiser(), (2, 2, 1), seed=3, shared_noise=0.0)[-1].x0
    c = _run(_affine_denoiser(), (2, 2, 1), seed=3, shared_noise=0.5)[-1].x0
    assert torch.equal(a, b) and not torch.allclose(a, c)
    with pytest.raises(ValueError, match="shared_noise"):
        _run(_zero_denoiser, (2, 2, 1), shared_noise=1.0)


@pytest.mark.parametrize("share", [0.0, 0.7])
def test_shared_noise_reaches_the_jumps_detail_noise(share):
    """Stage 1 starts from the jump: R↑ of stage 0 (its latent frames 0 and 1 lie in different temporal
    blocks, so the low band does not correlate them) plus the jump's fresh detail noise, which is drawn
    frame-correlated when the share is > 0."""
    starts = {}

    def recording(x, sigma, stage):
        starts.setdefault(stage, x.clone())
        return torch.zeros_like(x)

    _run(recording, (1, 1, 1), shared_noise=share, batch_size=1500)
    x = starts[1]  # (1500, 4, 3, 8, 8)
    corr = torch.corrcoef(torch.stack([x[:, :, 0].flatten(), x[:, :, 1].flatten()]))[0, 1].item()
    assert (abs(corr) < 0.03) if share == 0 else (corr > 0.2)


def test_shared_noise_reaches_the_x0_rules_renoising():
    """A denoiser whose clean estimate is 0 (v = x/σ): after the first "x0" step the latent is σ'·ε' with
    ε' the renoising draw, whose frames correlate by the share."""
    seen = []

    def predicts_zero(x, sigma, stage):
        seen.append(x.clone())
        return x / sigma

    _run(predicts_zero, (0, 0, 3), shared_noise=0.6, batch_size=1500, step_rule="x0")
    x = seen[1]  # (1500, 4, 5, 16, 16)
    corr = torch.corrcoef(torch.stack([x[:, :, 0].flatten(), x[:, :, 4].flatten()]))[0, 1].item()
    assert abs(corr - 0.6) < 0.03
