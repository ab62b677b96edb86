"""PSNR and SSIM against values worked out by hand and computed once with scikit-image 0.26."""

from __future__ import annotations

import math

import pytest
import torch

from rnr.errors import ImageError
from rnr.metrics import mean_finite, psnr, ssim, to_luminance


def pattern(height: int, width: int, phase: float) -> torch.Tensor:
    """A smooth deterministic RGB test pattern in 0.1..0.9, [1,3,H,W] float64 (no RNG involved)."""
    y = torch.arange(height, dtype=torch.float64)[:, None]
    x = torch.arange(width, dtype=torch.float64)[None]
    channels = [0.5 + 0.4 * torch.sin(0.21 * x + 0.13 * y * (c + 1) + phase) * torch.cos(0.07 * y - 0.05 * x * c)
                for c in range(3)]
    return torch.stack(channels)[None]


def test_psnr_of_a_constant_offset_is_known_by_hand():
    a = torch.full((2, 3, 16, 16), 0.5)
    b = a.clone()
    b[0] += 0.1  # mse 0.01 -> 20 dB
    b[1] += 0.01  # mse 1e-4 -> 40 dB
    values = psnr(a, b)
    assert values.dtype == torch.float64 and values.shape == (2,)
    assert values.tolist() == pytest.approx([20.0, 40.0], abs=1e-4)
    assert psnr(a * 255, b * 255, data_range=255.0).tolist() == pytest.approx([20.0, 40.0], abs=1e-4)


def test_psnr_of_identical_images_is_infinite_and_mean_finite_caps_it():
    a = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert math.isinf(psnr(a, a).item())
    assert mean_finite([float("inf"), 20.0]) == pytest.approx(60.0)


def test_ssim_of_constant_images_matches_the_closed_form():
    # Zero variance leaves only the luminance term: (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    a = torch.full((1, 3, 20, 20), 0.4, dtype=torch.float64)
    b = torch.full((1, 3, 20, 20), 0.6, dtype=torch.float64)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * 0.4 * 0.6 + c1) / (0.4 ** 2 + 0.6 ** 2 + c1)
    assert ssim(a, b).item() == pytest.approx(expected, abs=1e-12)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_scikit_image_gaussian_conventions():
    a = pattern(40, 48, 0.0)
    b = (a + 0.08 * pattern(40, 48, 1.7) - 0.04).clamp(0, 1)
    # skimage.metrics.structural_similarity(a, b, data_range=1, channel_axis=-1, gaussian_weights=True,
    #                                       sigma=1.5, use_sample_covariance=False) on these arrays (HWC)
    assert ssim(a, b).item() == pytest.approx(0.9950848337971924, abs=1e-9)
    # skimage.metrics.peak_signal_noise_ratio(a, b, data_range=1)
    assert psnr(a, b).item() == pytest.approx(36.049658792994144, abs=1e-9)


def test_ssim_against_scikit_image_when_installed():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    generator = torch.Generator().manual_seed(3)
    a = torch.rand(2, 3, 33, 29, generator=generator, dtype=torch.float64)
    b = (a + 0.2 * torch.randn(2, 3, 33, 29, generator=generator, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(a, b)
    ours_y = ssim(a, b, luminance=True)
    for i in range(2):
        hwc_a, hwc_b = a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy()
        ref = skimage_metrics.structural_similarity(hwc_a, hwc_b, data_range=1.0, channel_axis=-1,
                                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)
        ya, yb = to_luminance(a[i:i + 1])[0, 0].numpy(), to_luminance(b[i:i + 1])[0, 0].numpy()
        ref_y = skimage_metrics.structural_similarity(ya, yb, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                                      use_sample_covariance=False)
        assert ours_y[i].item() == pytest.approx(ref_y, abs=1e-9)


def test_ssim_drops_monotonically_with_noise():
    a = pattern(32, 32, 0.3).float()
    noise = torch.randn(a.shape, generator=torch.Generator().manual_seed(1))
    values = [ssim(a, (a + s * noise).clamp(0, 1)).item() for s in (0.0, 0.02, 0.05, 0.1, 0.2)]
    assert values[0] == pytest.approx(1.0)
    assert all(x > y for x, y in zip(values, values[1:]))


def test_luminance_of_white_and_black_is_the_studio_range():
    white_black = torch.stack([torch.ones(3, 2, 2), torch.zeros(3, 2, 2)])
    y = to_luminance(white_black)
    assert y.shape == (2, 1, 2, 2)
    assert y[0].mean().item() == pytest.approx(235 / 255, abs=1e-4)
    assert y[1].mean().item() == pytest.approx(16 / 255, abs=1e-6)


def test_metric_errors_say_what_is_wrong():
    with pytest.raises(ImageError, match=r"same shape.*\[1, 3, 16, 16\].*\[1, 3, 16, 17\]"):
        psnr(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))
    with pytest.raises(ImageError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ImageError, match="torch tensor"):
        psnr([0.5], torch.zeros(1))
