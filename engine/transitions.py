"""Stage transitions: R↓, R↑ and the renoising jump (DESIGN §4), for Haar and other orthogonal wavelets.

Every operator is separable: an orthonormal per-axis analysis matrix W = [L; H] (low rows, high rows)
built from PyWavelets' filter bank with periodic extension. With c = 1/√2 per halved axis,

    R↓(x) = c·L x   (Haar: average pooling)        R↑(y) = c⁻¹·Lᵀ y   (Haar: nearest upsampling)

so R↑R↓ = LᵀL is the orthogonal projection onto the low band. Time is halved on every latent frame but
the first (the causal VAE's first frame stands alone): frame 0 passes through the temporal transform.
Tensors are (B, C, T, H, W) latents throughout.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pywt
import torch
import torch.nn.functional as F

from engine.pyramid import jump_sigma

DEFAULT_WAVELET = "haar"
_C = 1.0 / math.sqrt(2.0)  # per-axis scale that makes R↓ an average for Haar


def available_wavelets() -> list[str]:
    """Orthogonal wavelets from PyWavelets usable for the jump (haar, db2…db8, sym2…sym8, coif1…)."""
    names = ["haar"]
    for family in ("db", "sym", "coif"):
        names += [n for n in pywt.wavelist(family) if pywt.Wavelet(n).orthogonal]
    return names


@functools.lru_cache(maxsize=128)
def _analysis_matrix_np(wavelet: str, n: int) -> np.ndarray:
    """Orthonormal (n × n) one-level periodic DWT matrix, rows [low; high], built from PyWavelets."""
    if n % 2:
        raise ValueError(f"a wavelet axis needs an even length, got {n}")
    try:
        w = pywt.Wavelet(wavelet)
    except ValueError as err:
        raise ValueError(
            f"unknown wavelet {wavelet!r}; choose one of {', '.join(available_wavelets())}"
        ) from err
    if not w.orthogonal:
        raise ValueError(
            f"wavelet {wavelet!r} is not orthogonal; choose one of {', '.join(available_wavelets())}"
        )
    eye = np.eye(n)
    low, high = pywt.dwt(eye, w, mode="periodization", axis=0)  # columns are the images of basis vectors
    return np.concatenate([low, high], axis=0)


@functools.lru_cache(maxsize=256)
def analysis_matrix(wavelet: str, n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(n × n) orthonormal analysis matrix as a tensor; rows 0…n/2−1 are the low band.

    Cached per (wavelet, n, dtype, device): the sampler applies the same few matrices at every jump.
    Treat the result as read-only.
    """
    return torch.as_tensor(_analysis_matrix_np(wavelet, n), dtype=dtype, device=device)


def _apply(x: torch.Tensor, m: torch.Tensor, dim: int) -> torch.Tensor:
    """Multiply every fibre of x along dim by matrix m: out[..., i, ...] = Σ_j m[i, j]·x[..., j, ...]."""
    return torch.movedim(torch.movedim(x, dim, -1) @ m.T, -1, dim)


def _low(wavelet: str, n: int, x: torch.Tensor) -> torch.Tensor:
    return analysis_matrix(wavelet, n, x.dtype, x.device)[: n // 2]


def _check_even(x: torch.Tensor, temporal: bool) -> None:
    axes = [("height", x.shape[3]), ("width", x.shape[4])]
    if temporal:
        axes.append(("latent frames after the first", x.shape[2] - 1))
    for name, n in axes:
        if n % 2:
            raise ValueError(f"a wavelet axis needs an even length, got {name} = {n}")


def downsample(x: torch.Tensor, wavelet: str = DEFAULT_WAVELET, temporal: bool = True) -> torch.Tensor:
    """R↓: (B, C, T, H, W) → (B, C, (T−1)/2+1, H/2, W/2) (T kept when temporal=False)."""
    temporal = temporal and x.shape[2] > 1
    if wavelet != "haar":
        return _downsample_matrix(x, wavelet, temporal)
    _check_even(x, temporal)  # c·L is the pair mean: average pooling, frame 0 pooled in space only
    if not temporal:
        return F.avg_pool3d(x, (1, 2, 2))
    return torch.cat([F.avg_pool3d(x[:, :, :1], (1, 2, 2)), F.avg_pool3d(x[:, :, 1:], 2)], dim=2)


def upsample(y: torch.Tensor, wavelet: str = DEFAULT_WAVELET, temporal: bool = True) -> torch.Tensor:
    """R↑: (B, C, T, H, W) → (B, C, 2(T−1)+1, 2H, 2W) (T kept when temporal=False). R↑R↓ is a projection."""
    temporal = temporal and y.shape[2] > 1
    if wavelet != "haar":
        return _upsample_matrix(y, wavelet, temporal)
    # c⁻¹·Lᵀ repeats each value: nearest upsampling, frame 0 in space only
    if not temporal:
        return F.interpolate(y, scale_factor=(1, 2, 2), mode="nearest")
    first = F.interpolate(y[:, :, :1], scale_factor=(1, 2, 2), mode="nearest")
    return torch.cat([first, F.interpolate(y[:, :, 1:], scale_factor=2, mode="nearest")], dim=2)


def _downsample_matrix(x: torch.Tensor, wavelet: str, temporal: bool) -> torch.Tensor:
    """R↓ for any orthogonal wavelet, as per-axis matrix products (Haar's fast path must agree)."""
    for dim in (3, 4):
        x = _C * _apply(x, _low(wavelet, x.shape[dim], x), dim)
    if temporal:
        rest = x[:, :, 1:]
        rest = _C * _apply(rest, _low(wavelet, rest.shape[2], x), 2)
        x = torch.cat([x[:, :, :1], rest], dim=2)
    return x


def _upsample_matrix(y: torch.Tensor, wavelet: str, temporal: bool) -> torch.Tensor:
    for dim in (3, 4):
        n = 2 * y.shape[dim]
        y = _apply(y, _low(wavelet, n, y).T, dim) / _C
    if temporal:
        rest = y[:, :, 1:]
        n = 2 * rest.shape[2]
        rest = _apply(rest, _low(wavelet, n, y).T, 2) / _C
        y = torch.cat([y[:, :, :1], rest], dim=2)
    return y


def project_low(x: torch.Tensor, wavelet: str = DEFAULT_WAVELET, temporal: bool = True) -> torch.Tensor:
    """R↑R↓x: the low-band part of x at x's own resolution (Haar: the block mean)."""
    return upsample(downsample(x, wavelet, temporal), wavelet, temporal)


def randn_like_shape(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Unit Gaussian noise drawn on the generator's device (CPU by default), moved to like's device/dtype.

    Drawing on the generator's device keeps a seed's output the same whether the model runs on CPU or GPU.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float32).to(
        like.device, like.dtype
    )


def block_elements(latent_frames: int, temporal: bool, device=None) -> torch.Tensor:
    """N per *low-resolution* latent frame, shaped (1, 1, T_low, 1, 1): 4 for frame 0, 8 for the rest."""
    n = torch.full((latent_frames,), 8.0 if temporal else 4.0, device=device)
    n[0] = 4.0
    return n.view(1, 1, -1, 1, 1)


def frame_common_shape(shape) -> tuple[int, ...]:
    """The shape of a draw common to every latent frame of noise shaped (B, C, T, H, W): (B, C, 1, H, W)."""
    return (*shape[:2], 1, *shape[3:])


def frame_shared(eps: torch.Tensor, common: torch.Tensor, share: float) -> torch.Tensor:
    """√share·common + √(1−share)·eps: unit noise eps (B, C, T, H, W) with `share` of its variance taken
    from `common` (B, C, 1, H, W), one unit draw for every latent frame (DESIGN §6b). Each element stays
    unit Gaussian; two latent frames correlate by `share`."""
    return share**0.5 * common + (1 - share) ** 0.5 * eps


def downsample_noise(
    eps: torch.Tensor, wavelet: str = DEFAULT_WAVELET, temporal: bool = True
) -> torch.Tensor:
    """Unit-variance noise one stage down, derived from unit noise eps at the higher resolution.

    R↓ of iid unit noise has per-element variance 1/N; rescaling by √N gives the orthonormal low-band
    coefficients, themselves iid unit noise (and independent of eps's high bands).
    """
    low = downsample(eps, wavelet, temporal)
    temporal = temporal and eps.shape[2] > 1
    return low * block_elements(low.shape[2], temporal, low.device).sqrt().to(low.dtype)


def renoise_jump(
    x: torch.Tensor,
    sigma_end: float,
    generator: torch.Generator | None,
    wavelet: str = DEFAULT_WAVELET,
    temporal: bool = True,
    detail_noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """Jump from the end of a stage at noise level e to the next stage's start (DESIGN §4).

    x = (1−e)·y + e·ε at the low resolution becomes x_new = (1−s*)·R↑(y) + s*·ε' with ε' iid unit noise
    at the high resolution: α·R↑(x) supplies the low band, fresh noise fills the detail bands, and
    blocks with fewer elements (frame 0: N = 4 next to N = 8) get the block-constant top-up of variance
    s*²/N − α²e² that brings them to the common target s*.

    detail_noise: optional unit noise at the high resolution whose detail bands are used (the sampler
    passes the projection of its one full-resolution draw); otherwise drawn from `generator`.
    Returns (x_new, s*).
    """
    temporal = temporal and x.shape[2] > 1
    n_low = block_elements(x.shape[2], temporal, x.device).to(torch.float64)
    e = float(sigma_end)
    s = jump_sigma(e, int(n_low.max().item()))
    alpha = (1.0 - s) / (1.0 - e)

    up = upsample(x, wavelet, temporal)
    if detail_noise is None:
        detail_noise = randn_like_shape(up.shape, generator, up)
    detail = detail_noise - project_low(detail_noise, wavelet, temporal)
    x_new = alpha * up + s * detail

    topup_var = (s * s / n_low - alpha * alpha * e * e).clamp_min(0.0)
    if bool((topup_var > 0).any()):
        z = randn_like_shape(x.shape, generator, x)
        x_new = x_new + upsample(z * topup_var.sqrt().to(x.dtype), wavelet, temporal)
    return x_new, s
