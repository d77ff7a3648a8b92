"""A Gaussian data model whose exact pyramidal velocity is known, and the exact law of the samplers on it.

Data: every latent channel is an independent draw of Y = μ + G·z (z ~ N(0, I)) at full resolution, with
band-dependent energy and some correlation across bands; the lower stages' clean signals are its Haar
projections Y_k = R↓…R↓Y (the latent definition, DESIGN §5), so U = R↑Y_(k−1) = P_k·Y_k with P_k = R↑R↓
the projection onto stage k's low band.

Exact velocity (DESIGN §6): on stage k's path x = M·Y + σ·ε with M = (1−ρ)(1−σe)·I + ρ(1−σs)·P_k and the
target v = N·Y + ε with N = ((1−σs)·P_k − (1−σe)·I)/(σs−σe). (x, v) are jointly Gaussian, so the
minimum-MSE velocity a perfectly trained pyramidal model would output is the conditional mean
    v(x) = N·μ + (N·Σ·Mᵀ + σ·I)(M·Σ·Mᵀ + σ²·I)⁻¹(x − M·μ),
affine in x. Its flow carries the law of the stage's start point to the law of its end point, so an
Euler sampler with many steps ends every stage on (1−σe)·Y_k + σe·ε in law.

Exact law of a sampler: with an affine velocity every step — Euler, the stage-exact "x0" rule
(DESIGN §6a), the renoising jump (DESIGN §4) — is affine in the state (x, U) plus independent Gaussian
noise, so the state stays Gaussian and `sampler_law` propagates its mean and covariance exactly. The
operators here are dense matrices built from index arithmetic, independently of engine.transitions.
`plain_x0=True` propagates the plain-process formulas instead (x0 = x − σ·v, renoise (1−σ')·x0 + σ'·ε)
— the rule the engine used before DESIGN §6a — for before/after comparisons.

    .venv/bin/python tests/gaussian_oracle.py     # detail-band energy ratios of both x0 rules
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.pyramid import PyramidGeometry, stage_geometry
from engine.schedule import schedule_sigmas

SIZE = (17, 64, 64)  # the smallest video a 3-stage pyramid accepts: latents 2×2×2, 3×4×4, 5×8×8


def replication(shape_low: tuple[int, int, int], temporal: bool) -> np.ndarray:
    """0/1 matrix (d_high × d_low) of nearest upsampling R↑ (Haar): frame 0 doubles in space only, later
    frames double in time too when `temporal`."""
    t, h, w = shape_low
    t_high = 2 * (t - 1) + 1 if temporal else t
    rows = []
    for th in range(t_high):
        tl = 0 if th == 0 else ((th + 1) // 2 if temporal else th)
        for yh in range(2 * h):
            for xh in range(2 * w):
                rows.append((tl * h + yh // 2) * w + xh // 2)
    m = np.zeros((len(rows), t * h * w))
    m[np.arange(len(rows)), rows] = 1.0
    return m


@dataclass
class GaussianPyramid:
    """The data model on one geometry: per stage (low → high) mean μ_k, covariance Σ_k, R↑ into the
    stage (None at stage 0) and the stage's training path (σs, σe)."""

    geometry: PyramidGeometry
    mean: list[np.ndarray]
    cov: list[np.ndarray]
    up: list[np.ndarray | None]
    paths: list[tuple[float, float]]

    @property
    def dims(self) -> list[int]:
        return [len(m) for m in self.mean]

    def lowband(self, k: int) -> np.ndarray:
        """P_k = R↑R↓ at stage k (the block mean), zero at stage 0."""
        up = self.up[k]
        if up is None:
            return np.zeros((self.dims[k], self.dims[k]))
        return up @ (up.T / up.sum(axis=0)[:, None])

    def bands(self, k: int) -> dict[str, np.ndarray]:
        """Orthogonal projectors onto the bands of stage k: the lowest stage's band, then each stage's
        detail band in turn ("low", "detail1", "detail2" at full resolution)."""
        chain = np.eye(self.dims[k])  # R↑…R↑ from stage j to k, times R↓…R↓ back: the stage-j band
        projectors = [np.eye(self.dims[k])]
        for j in range(k, 0, -1):
            chain = chain @ self.up[j]
            down = np.linalg.pinv(chain)
            projectors.insert(0, chain @ down)
        names = ["low"] + [f"detail{j}" for j in range(1, k + 1)]
        bands = [projectors[0]] + [b - a for a, b in zip(projectors, projectors[1:])]
        return dict(zip(names, bands))

    def velocity_map(self, k: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """(A, c) of the exact velocity v(x) = A·x + c at stage k, level σ."""
        s_start, s_end = self.paths[k]
        rho = (sigma - s_end) / (s_start - s_end)
        p, eye = self.lowband(k), np.eye(self.dims[k])
        m = (1 - rho) * (1 - s_end) * eye + rho * (1 - s_start) * p
        n = ((1 - s_start) * p - (1 - s_end) * eye) / (s_start - s_end)
        cov, mu = self.cov[k], self.mean[k]
        a = np.linalg.solve(m @ cov @ m.T + sigma**2 * eye, (n @ cov @ m.T + sigma * eye).T).T
        return a, n @ mu - a @ (m @ mu)

    def denoiser(self):
        """The exact velocity as an engine denoiser (x: (B, C, T, H, W), every channel one draw)."""
        cache: dict[tuple[int, float], tuple[torch.Tensor, torch.Tensor]] = {}

        def denoise(x: torch.Tensor, sigma: float, stage: int) -> torch.Tensor:
            if (stage, sigma) not in cache:
                a, c = self.velocity_map(stage, sigma)
                cache[(stage, sigma)] = (torch.from_numpy(a.T), torch.from_numpy(c))
            a_t, c = cache[(stage, sigma)]
            flat = x.reshape(-1, self.dims[stage]).double()
            return (flat @ a_t + c).reshape(x.shape).to(x.dtype)

        return denoise

    def stage_end_law(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Law of the data's end point of stage k: (1−σe)·Y_k + σe·ε."""
        e = self.paths[k][1]
        return (1 - e) * self.mean[k], (1 - e) ** 2 * self.cov[k] + e**2 * np.eye(self.dims[k])


def gaussian_pyramid(
    seed: int = 0, scales=(1.0, 0.9, 0.7), mean_scales=(1.5, 1.2, 0.8), mix: float = 0.25
) -> GaussianPyramid:
    """The data model. Per full-resolution element, band b (the stage-0 band, then each stage's detail
    band) has std scales[b] before a random mixing I + mix·R/√d that correlates elements and bands, and a
    mean of rms mean_scales[b]: like images, every band — the coarse ones too — carries signal."""
    geometry = stage_geometry(*SIZE, latent_channels=1)
    shapes = [s.latent_shape[1:] for s in geometry.stages]
    up = [None] + [replication(shapes[k - 1], geometry.stages[k - 1].temporal_halved) for k in range(1, 3)]
    d = [int(np.prod(s)) for s in shapes]
    model = GaussianPyramid(geometry, [np.zeros(n) for n in d], [], up, [])  # bands() needs dims and up
    rng = np.random.default_rng(seed)
    # Π_b·(white noise) has per-element variance rank_b/d: √(d/rank_b) makes it one in every band
    unit = [math.sqrt(d[2] / np.trace(b)) * b for b in model.bands(2).values()]
    mixing = np.eye(d[2]) + mix * rng.standard_normal((d[2], d[2])) / math.sqrt(d[2])
    g = sum(s * b for s, b in zip(scales, unit)) @ mixing
    mean = sum(m * b for m, b in zip(mean_scales, unit)) @ rng.standard_normal(d[2])
    cov = g @ g.T
    means, covs = [mean], [cov]
    for k in (2, 1):  # R↓ = (R↑)ᵀ with rows normalised: the block mean
        down = up[k].T / up[k].sum(axis=0)[:, None]
        means.insert(0, down @ means[0])
        covs.insert(0, down @ covs[0] @ down.T)
    model.mean, model.cov = means, covs
    model.paths = [(s.sigma_start if s.index else 1.0, s.sigma_end) for s in geometry.stages]
    return model


@dataclass
class Law:
    """Mean and covariance of one channel's latent (flattened C-order over (T, H, W))."""

    mean: np.ndarray
    cov: np.ndarray


def _affine(mean, cov, t, shift, noise):
    return t @ mean + shift, t @ cov @ t.T + noise


def jump_law(model: GaussianPyramid, k: int, e: float) -> tuple[np.ndarray, np.ndarray]:
    """(R↑ scaled by α, added noise covariance) of the jump out of stage k at level e (DESIGN §4): common
    target s* for N = 8 (or 4) blocks, detail noise s*²·(I − P), block-constant top-up s*²/N − α²e²."""
    up = model.up[k + 1]
    n_block = up.sum(axis=0)  # elements per low-resolution block: 4 for frame 0, 8 for the rest
    s = math.sqrt(n_block.max()) * e / (1 - e + math.sqrt(n_block.max()) * e)
    alpha = (1 - s) / (1 - e)
    topup = np.clip(s * s / n_block - alpha**2 * e**2, 0.0, None)
    noise = s * s * (np.eye(len(up)) - model.lowband(k + 1)) + up @ np.diag(topup) @ up.T
    return alpha * up, noise


def sampler_law(model: GaussianPyramid, counts, rule: str, plain_x0: bool = False):
    """Exact law of engine.sampling.sample with the exact velocity: per stage, the latent at the stage's
    end ("latent") and the clean estimate the stage_end event reports ("x0"; for the last stage the
    final output). State: (x, U) with U = R↑ of the previous stage's final clean estimate."""
    grids = schedule_sigmas(model.geometry, counts)
    d0 = model.dims[0]
    mean, cov = np.zeros(2 * d0), np.zeros((2 * d0, 2 * d0))
    cov[:d0, :d0] = np.eye(d0)  # x = ε at stage 0; U = 0 (σs = 1: not used)
    out = []
    for k, grid in enumerate(grids):
        d, sig = model.dims[k], grid.tolist()
        s_start, s_end = sig[0], sig[-1]
        eye, zero = np.eye(d), np.zeros((d, d))
        kappa = 1.0 if plain_x0 else s_start * (1 - s_end) / (s_start - s_end)
        for i in range(counts[k]):
            s, s_next = sig[i], sig[i + 1]
            a, c = model.velocity_map(k, s)
            # clean estimate Ŷ = (x − σ·v − (1−κ)·U)/κ, as rows over the state (x, U)
            clean = np.hstack([(eye - s * a) / kappa, -(1 - kappa) / kappa * eye])
            clean_shift = -s * c / kappa
            noise = np.zeros((2 * d, 2 * d))
            if rule == "euler":
                x_rows, x_shift = np.hstack([eye + (s_next - s) * a, zero]), (s_next - s) * c
            else:  # renoise on the stage's path: x' = (1−ρ')(1−σe)·Ŷ + ρ'(1−σs)·U + σ'·ε'
                rho = (s_next - s_end) / (s_start - s_end)
                y_coef, u_coef = (
                    ((1 - s_next), 0.0) if plain_x0 else ((1 - rho) * (1 - s_end), rho * (1 - s_start))
                )
                x_rows = y_coef * clean + np.hstack([zero, u_coef * eye])
                x_shift = y_coef * clean_shift
                noise[:d, :d] = s_next**2 * eye
            last = i == counts[k] - 1
            u_rows, u_shift = (clean, clean_shift) if last else (np.hstack([zero, eye]), np.zeros(d))
            t = np.vstack([x_rows, u_rows])
            mean, cov = _affine(mean, cov, t, np.concatenate([x_shift, u_shift]), noise)
        # state is now (x at σe, Ŷ of the last step)
        x_law = Law(mean[:d], cov[:d, :d])
        out.append({"latent": x_law, "x0": x_law if k == len(grids) - 1 else Law(mean[d:], cov[d:, d:])})
        if k + 1 < len(grids):
            jump, jump_noise = jump_law(model, k, s_end)
            up = model.up[k + 1]
            t = np.block([[jump, np.zeros_like(up)], [np.zeros_like(up), up]])
            noise = np.zeros((2 * len(up), 2 * len(up)))
            noise[: len(up), : len(up)] = jump_noise
            mean, cov = _affine(mean, cov, t, 0.0, noise)
    return out


def band_energy(law: Law, projector: np.ndarray) -> float:
    """Σ over the band of the per-element second moment about the mean: tr(Π·C·Π)."""
    return float(np.trace(projector @ law.cov @ projector))


def detail_ratio(model: GaussianPyramid, law: Law) -> dict[str, float]:
    """Each full-resolution band's energy (tr Π·C·Π) relative to the data's."""
    data = Law(model.mean[2], model.cov[2])
    return {n: band_energy(law, p) / band_energy(data, p) for n, p in model.bands(2).items()}


def main() -> None:
    model = gaussian_pyramid()
    detail = model.bands(1)["detail1"]
    print("final output: full-resolution band energy / the data's; middle stage's clean estimate:")
    print("relative error of its detail-band mean (exact laws, no Monte Carlo)")
    for counts in ((2, 2, 1), (4, 4, 2), (10, 10, 5)):
        label = "-".join(map(str, counts))
        for name, plain in (("x0, plain formulas (before)", True), ("x0, stage-exact (DESIGN §6a)", False)):
            law = sampler_law(model, counts, "x0", plain)
            ratio = detail_ratio(model, law[-1]["x0"])
            err = np.linalg.norm(detail @ (law[1]["x0"].mean - model.mean[1])) / np.linalg.norm(
                detail @ model.mean[1]
            )
            print(
                f"{label:8s} {name:30s} "
                + "  ".join(f"{n} {r:.3f}" for n, r in ratio.items())
                + f"   stage-1 detail mean error {err:.3f}"
            )
        ratio = detail_ratio(model, sampler_law(model, counts, "euler")[-1]["x0"])
        print(f"{label:8s} {'euler':30s} " + "  ".join(f"{n} {r:.3f}" for n, r in ratio.items()))


if __name__ == "__main__":
    main()
