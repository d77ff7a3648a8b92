"""The renoising jump and the wavelet transforms (DESIGN §4)."""

import math

import pytest
import torch

from engine.pyramid import jump_sigma
from engine.transitions import (
    analysis_matrix,
    available_wavelets,
    downsample,
    downsample_noise,
    project_low,
    renoise_jump,
    upsample,
)

WAVELETS = ["haar", "db2", "sym4"]


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_wavelet_matrices_are_orthonormal(wavelet, n):
    w = analysis_matrix(wavelet, n, torch.float64)
    assert torch.allclose(w @ w.T, torch.eye(n, dtype=torch.float64), atol=1e-10)


def test_haar_is_average_pooling_and_nearest_upsampling():
    x = torch.randn(2, 3, 5, 8, 6, dtype=torch.float64)
    low = downsample(x)
    assert low.shape == (2, 3, 3, 4, 3)
    # frame 0: 2×2 spatial average; later frames: 2×2×2 averages of frames (1,2), (3,4)
    expected0 = x[:, :, 0].reshape(2, 3, 4, 2, 3, 2).mean(dim=(3, 5))
    assert torch.allclose(low[:, :, 0], expected0)
    expected1 = x[:, :, 1:3].reshape(2, 3, 2, 4, 2, 3, 2).mean(dim=(2, 4, 6))
    assert torch.allclose(low[:, :, 1], expected1)
    up = upsample(low)
    assert up.shape == x.shape
    assert torch.allclose(up[:, :, 1], up[:, :, 2]) and torch.allclose(up[:, :, 1, 0, 0], up[:, :, 1, 1, 1])


@pytest.mark.parametrize("temporal", [True, False])
def test_haar_fast_path_matches_the_wavelet_matrices(temporal):
    from engine.transitions import _downsample_matrix, _upsample_matrix

    x = torch.randn(2, 3, 5, 8, 6, dtype=torch.float64)
    assert torch.allclose(
        downsample(x, "haar", temporal), _downsample_matrix(x, "haar", temporal), atol=1e-12
    )
    y = torch.randn(2, 3, 3, 4, 3, dtype=torch.float64)
    fast, matrix = upsample(y, "haar", temporal), _upsample_matrix(y, "haar", temporal)
    assert torch.allclose(fast, matrix, atol=1e-12)


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_odd_axes_are_refused_not_floored(wavelet):
    with pytest.raises(ValueError, match="even length"):
        downsample(torch.zeros(1, 1, 5, 6, 7), wavelet)
    with pytest.raises(ValueError, match="even length"):
        downsample(torch.zeros(1, 1, 4, 6, 6), wavelet)  # 3 frames after the first


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("temporal", [True, False])
def test_up_down_is_a_projection(wavelet, temporal):
    x = torch.randn(1, 2, 5, 8, 8, dtype=torch.float64)
    p = project_low(x, wavelet, temporal)
    assert torch.allclose(project_low(p, wavelet, temporal), p, atol=1e-10)
    assert not torch.allclose(p, x)
    # R↓R↑ is the identity on the low resolution
    y = torch.randn(1, 2, 3, 4, 4, dtype=torch.float64)
    assert torch.allclose(downsample(upsample(y, wavelet, temporal), wavelet, temporal), y, atol=1e-10)
    # the residual is orthogonal to the low band
    assert abs(float(((x - p) * p).sum())) < 1e-8


def test_unknown_and_non_orthogonal_wavelets_are_rejected():
    with pytest.raises(ValueError, match="unknown wavelet"):
        downsample(torch.zeros(1, 1, 1, 4, 4), "nope")
    with pytest.raises(ValueError, match="not orthogonal"):
        downsample(torch.zeros(1, 1, 1, 4, 4), "bior2.2")
    assert {"haar", "db2", "sym4"} <= set(available_wavelets())


def test_pyramid_flow_numbers_for_spatial_blocks():
    # N = 4, e = 2/3 → s = 0.8, α = (1 − s)/(1 − e) = 0.6 (Pyramid Flow)
    s = jump_sigma(2 / 3, 4)
    assert s == pytest.approx(0.8)
    assert (1 - s) / (1 - 2 / 3) == pytest.approx(0.6)
    assert jump_sigma(1 / 3, 8) == pytest.approx(math.sqrt(8) / 3 / (2 / 3 + math.sqrt(8) / 3))


def _jump_statistics(wavelet, temporal, shape_low, e, draws=4000):
    """Run the jump on many draws of x = (1−e)·y + e·ε; return (s, noise after jump, signal part)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn((1, *shape_low), generator=g, dtype=torch.float64)
    eps = torch.randn((draws, *shape_low), generator=g, dtype=torch.float64)
    x = (1 - e) * y + e * eps
    x_new, s = renoise_jump(x, e, g, wavelet, temporal)
    signal = upsample(y, wavelet, temporal)
    return s, x_new - (1 - s) * signal


@pytest.mark.parametrize("wavelet", ["haar", "db2"])
def test_jump_noise_is_isotropic_with_mixed_blocks(wavelet):
    # T_low = 3 latent frames: frame 0 has N = 4 blocks, frames 1–2 have N = 8 (first frame stands alone)
    e = 2 / 3
    s, noise = _jump_statistics(wavelet, True, (1, 3, 2, 2), e)
    assert s == pytest.approx(jump_sigma(e, 8))
    flat = noise.reshape(noise.shape[0], -1)  # (draws, 5·4·4 = 80 elements)
    # zero mean: the signal coefficient is exactly 1 − s*
    assert flat.mean(0).abs().max() < 4 * s / math.sqrt(flat.shape[0])
    cov = flat.T @ flat / flat.shape[0]
    std = cov.diagonal().sqrt()
    assert torch.allclose(std, torch.full_like(std, s), rtol=0.06)  # every element, frame 0 included
    off = cov - torch.diag(cov.diagonal())
    assert off.abs().max() < 0.08 * s * s  # no correlation inside or across blocks


def test_jump_spatial_only_matches_pyramid_flow():
    s, noise = _jump_statistics("haar", False, (1, 2, 2, 2), 2 / 3)
    assert s == pytest.approx(0.8)
    flat = noise.reshape(noise.shape[0], -1)
    cov = flat.T @ flat / flat.shape[0]
    assert torch.allclose(
        cov.diagonal().sqrt(), torch.full((flat.shape[1],), 0.8, dtype=cov.dtype), rtol=0.06
    )
    assert (cov - torch.diag(cov.diagonal())).abs().max() < 0.08 * 0.64


def test_jump_without_renoising_would_be_wrong():
    """The statistics test can fail: plain upsampling leaves block-correlated noise of the wrong level."""
    g = torch.Generator().manual_seed(1)
    eps = torch.randn((4000, 1, 3, 2, 2), generator=g, dtype=torch.float64)
    flat = upsample(eps).reshape(4000, -1)
    cov = flat.T @ flat / 4000
    assert (cov - torch.diag(cov.diagonal())).abs().max() > 0.5


def test_jump_is_deterministic_under_a_generator():
    x = torch.randn(1, 4, 3, 4, 4)
    a, _ = renoise_jump(x, 0.5, torch.Generator().manual_seed(7))
    b, _ = renoise_jump(x, 0.5, torch.Generator().manual_seed(7))
    c, _ = renoise_jump(x, 0.5, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("temporal", [True, False])
def test_downsampled_noise_is_unit_and_white(temporal):
    g = torch.Generator().manual_seed(3)
    eps = torch.randn((4000, 1, 5, 4, 4), generator=g, dtype=torch.float64)
    low = downsample_noise(eps, temporal=temporal).reshape(4000, -1)
    cov = low.T @ low / 4000
    assert torch.allclose(cov.diagonal(), torch.ones(low.shape[1], dtype=cov.dtype), rtol=0.08)
    assert (cov - torch.diag(cov.diagonal())).abs().max() < 0.08
