"""Full-reference image quality: PSNR and SSIM, batched, in torch (CPU or GPU).

Both take two batches [B,C,H,W] (or one image [C,H,W]) of the same shape and return one value per
image as a float64 tensor [B]. ``luminance=True`` compares the BT.601 luma Y of MATLAB's
``rgb2ycbcr`` (range 16/255..235/255) as most restoration papers do; the default compares RGB.

SSIM follows Wang et al. (2004) with the conventions of scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
channel_axis=...)``: an 11x11 gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, the SSIM map
averaged over the pixels at least 5 from the border, then over channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import ImageError

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, *, luminance: bool = False) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, float64 [B]; ``inf`` where the images are equal."""
    a, b = _pair(a, b, luminance)
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range ** 2 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, *, luminance: bool = False) -> torch.Tensor:
    """Structural similarity per image, float64 [B] in -1..1 (1 = identical); see the module docs."""
    a, b = _pair(a, b, luminance)
    side = 2 * _SSIM_RADIUS + 1
    if a.shape[-1] < side or a.shape[-2] < side:
        raise ImageError(f"SSIM needs images of at least {side}x{side} pixels, got {a.shape[-1]}x{a.shape[-2]}")
    batch, channels = a.shape[:2]
    window = _gaussian_window(a.device)
    # A 'valid' filter equals scikit-image's reflect-padded filter followed by cropping the border.
    planes = torch.stack([a, b, a * a, b * b, a * b]).reshape(5 * batch * channels, 1, *a.shape[-2:])
    blurred = F.conv2d(F.conv2d(planes, window.view(1, 1, -1, 1)), window.view(1, 1, 1, -1))
    mu_a, mu_b, aa, bb, ab = blurred.reshape(5, batch, channels, *blurred.shape[-2:])
    var_a = aa - mu_a * mu_a
    var_b = bb - mu_b * mu_b
    cov = ab - mu_a * mu_b
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(2).mean(dim=2).mean(dim=1)


def to_luminance(images: torch.Tensor) -> torch.Tensor:
    """BT.601 luma Y of RGB images in 0..1, as MATLAB's ``rgb2ycbcr`` (16/255..235/255), [B,1,H,W]."""
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=images.dtype, device=images.device) / 255.0
    return (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True) + 16.0 / 255.0


def _pair(a: torch.Tensor, b: torch.Tensor, luminance: bool) -> tuple[torch.Tensor, torch.Tensor]:
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, torch.Tensor):
            raise ImageError(f"metric input {name} must be a torch tensor [B,C,H,W], got {type(value).__name__}")
    if a.ndim == 3:
        a = a.unsqueeze(0)
    if b.ndim == 3:
        b = b.unsqueeze(0)
    if a.ndim != 4 or a.shape != b.shape:
        raise ImageError(f"metrics compare two batches of the same shape [B,C,H,W]; got {list(a.shape)} and "
                         f"{list(b.shape)}: resize or crop one to match the other")
    a = a.detach().to(torch.float64)
    b = b.detach().to(b.device if b.device == a.device else a.device, torch.float64)
    if luminance:
        if a.shape[1] != 3:
            raise ImageError(f"luminance=True needs RGB images [B,3,H,W], got {a.shape[1]} channels")
        a, b = to_luminance(a), to_luminance(b)
    return a, b


def _gaussian_window(device: torch.device) -> torch.Tensor:
    offsets = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    weights = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


def mean_finite(values: torch.Tensor | list[float], cap_db: float = 100.0) -> float:
    """Mean of metric values with infinities (identical images' PSNR) capped at ``cap_db``."""
    tensor = torch.as_tensor(values, dtype=torch.float64).clamp(max=cap_db)
    return float(tensor.mean()) if tensor.numel() else math.nan


__all__ = ["mean_finite", "psnr", "ssim", "to_luminance"]
