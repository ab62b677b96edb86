"""Noise: sigma and kind from the principal components of small image patches.

Natural image patches live near a low-dimensional subspace while white noise spreads its variance
evenly over every direction, so the smallest eigenvalues of the patch covariance measure the noise
variance (Chen, Zhu and Heng, ICCV 2015: the largest tail of eigenvalues whose mean does not exceed
its median). Each colour channel is analysed on its own, so noise shared between channels (luminance
noise) counts fully. Spatially correlated noise (demosaiced, smoothed) puts little variance in the
smallest eigenvalues and is underestimated: a known limit of this estimator. Doing this for patches of dark, middle and bright mean
intensity gives the noise variance as a function of the signal: flat for gaussian noise, rising for
poisson noise; the fit ``var = a + b * intensity`` gives the kind and the std at mid-grey.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._ops import native_tiles

PATCH = 7
STRIDE = 3
TILE = 256
GRID = 2
INTENSITY_BINS = ((0.06, 0.30), (0.30, 0.50), (0.50, 0.70), (0.70, 0.94))
MIN_PATCHES_PER_BIN = 300
MIN_SIDE = 2 * PATCH


@dataclass(frozen=True)
class NoiseEvidence:
    """What the noise estimator measured on one image (std values in 0..255 units)."""

    sigma_255: float
    """Noise std at mid-grey (0.5)."""
    kind: str
    """``"gaussian"`` or ``"poisson"``."""
    signal_dependence: float
    """Share of the mid-grey noise variance that grows with intensity (0 = gaussian, 1 = poisson)."""
    bin_sigmas_255: tuple[tuple[float, float], ...]
    """(mean intensity, std) per intensity bin with enough patches."""


def _tail_variance(eigenvalues: torch.Tensor) -> torch.Tensor:
    """Chen et al.'s noise variance from ascending eigenvalues [N, D]."""
    n, d = eigenvalues.shape
    out = torch.full((n,), float("nan"), dtype=eigenvalues.dtype)
    for count in range(d, 1, -1):
        tail = eigenvalues[:, :count]
        ok = (tail.mean(dim=1) <= tail.median(dim=1).values) & torch.isnan(out)
        out = torch.where(ok, tail.mean(dim=1), out)
    return torch.where(torch.isnan(out), eigenvalues[:, 0], out).clamp(min=0)


def _bin_covariances(patches: torch.Tensor, means: torch.Tensor) -> tuple[list[float], list[int], torch.Tensor]:
    """Centre intensity, patch count and covariance [K,D,D] (float64) per intensity bin."""
    centres, counts, covs = [], [], []
    dim = patches.shape[1]
    for low, high in INTENSITY_BINS:
        keep = (means >= low) & (means < high)
        count = int(keep.sum())
        counts.append(count)
        if count < MIN_PATCHES_PER_BIN:
            centres.append((low + high) / 2)
            covs.append(torch.eye(dim, dtype=torch.float64))
            continue
        p = patches[keep].double()
        centres.append(float(means[keep].mean()))
        p = p - p.mean(dim=0, keepdim=True)
        covs.append(p.T @ p / count)
    return centres, counts, torch.stack(covs)


def estimate_noise(images: torch.Tensor) -> list[NoiseEvidence | None]:
    """Noise evidence per image of a batch [B,3,H,W] in 0..1 (None when an image is too small)."""
    b, c, h, w = images.shape
    if min(h, w) < MIN_SIDE:
        return [None] * b
    tiles, k = native_tiles(images.float(), TILE, GRID)
    planes = tiles.reshape(b * k * c, 1, *tiles.shape[-2:])
    patches = F.unfold(planes, PATCH, stride=STRIDE)  # [B*k*3, D, N]
    patches = patches.reshape(b, k * c, PATCH * PATCH, -1).permute(0, 1, 3, 2).reshape(b, -1, PATCH * PATCH)
    means = patches.mean(dim=2)
    out: list[NoiseEvidence | None] = []
    for i in range(b):
        centres, counts, covs = _bin_covariances(patches[i].cpu(), means[i].cpu())
        usable = torch.tensor(counts) >= MIN_PATCHES_PER_BIN
        if not bool(usable.any()):
            # Too few patches in any intensity range (e.g. a black frame): fall back to all patches.
            usable[:] = True
        var_bins = _tail_variance(torch.linalg.eigvalsh(covs))
        weights = torch.tensor(counts, dtype=torch.float64).sqrt() * usable
        x = torch.tensor(centres, dtype=torch.float64)[usable]
        y = var_bins[usable]
        wts = weights[usable]
        if x.numel() >= 2:
            design = torch.stack([torch.ones_like(x), x], dim=1) * wts[:, None]
            a, slope = torch.linalg.lstsq(design, (y * wts)[:, None]).solution[:, 0].tolist()
            a, slope = max(a, 0.0), max(slope, 0.0)
            mid = a + 0.5 * slope
            if mid <= 0:
                mid = float(y.mean())
            dependence = min(1.0, 0.5 * slope / mid) if mid > 0 else 0.0
        else:
            mid, dependence = float(y.mean()), 0.0
        bins = tuple((round(cen, 3), round(255.0 * math.sqrt(max(float(v), 0.0)), 2))
                     for cen, v, u in zip(centres, var_bins, usable) if bool(u))
        out.append(NoiseEvidence(sigma_255=255.0 * math.sqrt(max(mid, 0.0)),
                                 kind="poisson" if dependence > 0.5 else "gaussian", signal_dependence=dependence,
                                 bin_sigmas_255=bins))
    return out
