"""The samplers against a Gaussian data model with a known exact pyramidal velocity (gaussian_oracle.py).

Monte-Carlo tolerances (n = batch × channels independent draws of one channel's latent, d elements):
for a band with orthogonal projector Π and exact law N(m, C), write C_Π = Π·C·Π.
- mean: ‖Π(m̂ − m)‖² is a weighted χ² with expectation tr(C_Π)/n and standard deviation
  √(2·tr(C_Π²))/n; the test allows the expectation plus 6 standard deviations.
- energy: tr(Π·Ĉ·Π) (Ĉ the unbiased sample covariance) has expectation tr(C_Π) and standard deviation
  √(2·tr(C_Π²)/(n − 1)) for Gaussian draws; the test allows 5 standard deviations either way.
The runs are seeded, so they are deterministic; the bounds say how far off a correct sampler could land.

Each Monte-Carlo test was checked by hand to fail (on a scratch copy of engine/sampling.py) when
- the jump is removed: `renoise_jump` replaced by plain upsampling `upsample(x)`, or by α·upsample(x)
  (the right signal scale, no detail-band noise);
- κ is removed: `stage_clean` replaced by x − σ·v;
- the renoise is removed: the "x0" rule renoising with (1 − σ')·x̂0 + σ'·ε (the plain process).
Which of these each test catches, and the first statistic that failed, is in its docstring.
"""

import math

import numpy as np
import pytest
import torch
from gaussian_oracle import SIZE, Law, gaussian_pyramid, sampler_law

from engine.pyramid import stage_geometry
from engine.sampling import sample
from engine.schedule import schedule_sigmas


@pytest.fixture(scope="module")
def model():
    return gaussian_pyramid()


@pytest.fixture(scope="module")
def euler_law(model):
    return sampler_law(model, (200, 200, 100), "euler")


def engine_stage_ends(model, counts, rule, batch: int, channels: int, seed: int = 0):
    """Run engine.sampling.sample with the exact velocity; per stage, (n, d) draws of the latent at the
    stage's end and of the clean estimate its stage_end event reports (the final output at the last)."""
    geometry = stage_geometry(*SIZE, latent_channels=channels)
    events = sample(
        model.denoiser(),
        geometry,
        schedule_sigmas(geometry, counts),
        torch.Generator().manual_seed(seed),
        batch_size=batch,
        step_rule=rule,
    )
    ends = [e for e in events if e.kind == "stage_end"]
    flat = lambda t: t.reshape(-1, t[0, 0].numel()).double().numpy()  # noqa: E731 - one row per channel
    return [{"latent": flat(e.latent), "x0": flat(e.x0)} for e in ends]


def assert_matches(draws: np.ndarray, law: Law, bands: dict[str, np.ndarray], where: str) -> None:
    """Mean and energy of every band of `draws` agree with `law` within the Monte-Carlo bounds above."""
    n = len(draws)
    mean, cov = draws.mean(axis=0), np.cov(draws.T)
    for name, p in bands.items():
        c_band = p @ law.cov @ p
        tr, tr2 = float(np.trace(c_band)), float(np.trace(c_band @ c_band))
        err = float(np.sum((p @ (mean - law.mean)) ** 2))
        bound = (tr + 6 * math.sqrt(2 * tr2)) / n
        assert err <= bound, f"{where}, {name} band: squared mean error {err:.3g} > {bound:.3g}"
        energy, sd = float(np.trace(p @ cov @ p)), math.sqrt(2 * tr2 / (n - 1))
        assert abs(energy - tr) <= 5 * sd, (
            f"{where}, {name} band: energy {energy:.4g}, exact {tr:.4g} (tolerance {5 * sd:.3g})"
        )


def test_the_exact_velocity_carries_the_data_pyramid(model, euler_law):
    """No Monte Carlo: the oracle and the exact-law propagation are right. Euler with the exact velocity
    ends every stage on the data's end point (1−σe)·Y_k + σe·ε in law — the mean exactly (the mean path is
    linear in σ, so Euler is exact for it), the band energies within Euler's O(1/steps) error, which
    shrinks tenfold from 20-20-10 to 200-200-100 (measured: worst band 0.768 → 0.974 of the data's)."""

    def worst(law):
        gap = 0.0
        for k in range(3):
            mean, cov = model.stage_end_law(k)
            np.testing.assert_allclose(law[k]["latent"].mean, mean, atol=1e-9)
            for p in model.bands(k).values():
                gap = max(gap, abs(np.trace(p @ law[k]["latent"].cov @ p) / np.trace(p @ cov @ p) - 1))
        return gap

    fine, coarse = worst(euler_law), worst(sampler_law(model, (20, 20, 10), "euler"))
    assert fine < 0.03 and coarse > 5 * fine


def test_euler_200_200_100_marginals_at_every_stage_end(model, euler_law):
    """The engine's Euler sampler matches the exact law at every stage end: the latent (band means and
    energies) and the stage's clean estimate that its stage_end event reports.
    Fails without the jump (stage 1 latent: low-band mean 13.6 against a bound of 0.12 with plain
    upsampling, low-band energy 22.0 against 28.6 ± 2.4 with α·upsampling) and without κ (stage 1 clean
    estimate: low-band energy 62.1 against 54.8 ± 4.6). Euler does not renoise, so the renoise step
    cannot affect it."""
    ends = engine_stage_ends(model, (200, 200, 100), "euler", batch=64, channels=16)
    for k, (drawn, exact) in enumerate(zip(ends, euler_law)):
        for what in ("latent", "x0"):
            assert_matches(drawn[what], exact[what], model.bands(k), f"stage {k} {what}")


@pytest.mark.parametrize("counts", [(2, 2, 1), (4, 4, 2)])
def test_x0_rule_marginals_at_every_stage_end(model, counts):
    """The engine's "x0" rule matches the exact law of the stage-exact rule (DESIGN §6a) at every stage
    end, and that rule is mean-exact: with the exact velocity the clean estimate at every stage end has the
    data's mean μ_k and the latent (1−σe)·μ_k (asserted on the exact law, then on the draws through it).
    Fails (first failing statistic, 2-2-1 / 4-4-2) without the jump (stage 1 latent low-band mean, or
    with α·upsampling stage 1 low-band / stage 2 detail1-band energy), without κ (stage 1 latent
    low-band energy 7.52 against 6.29 ± 0.36 / 9.01 against 7.21 ± 0.42) and without the stage-exact
    renoise (the same statistic: 6.84 / 8.07). On the exact law the plain formulas are off the data's
    mean by 20–30% in the middle stage's detail band."""
    law = sampler_law(model, counts, "x0")
    for k in range(3):
        np.testing.assert_allclose(law[k]["x0"].mean, model.mean[k], atol=1e-9)
        np.testing.assert_allclose(law[k]["latent"].mean, model.stage_end_law(k)[0], atol=1e-9)
    ends = engine_stage_ends(model, counts, "x0", batch=128, channels=16)
    for k, (drawn, exact) in enumerate(zip(ends, law)):
        for what in ("latent", "x0"):
            assert_matches(drawn[what], exact[what], model.bands(k), f"{counts} stage {k} {what}")
