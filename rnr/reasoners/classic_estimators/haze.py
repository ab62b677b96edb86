"""Haze: atmospheric light and transmission by He et al.'s dark channel prior.

In haze-free outdoor photos most patches hold some pixel that is dark in at least one colour channel;
haze lifts those towards the airlight A, so the dark channel of I / A measures 1 - t. The analysis
runs on an area-downscaled copy (haze is smooth), lightly blurred so that sensor noise does not drag
the patch minima down. The raw mean transmission is mapped to the calibration's transmission by the
fitted line ``HAZE_T_*`` of :mod:`.calibrated` (which also corrects for what noise left behind).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...filters import dark_channel, estimate_atmospheric_light, gaussian_blur, resize_max_side

ANALYSIS_SIDE = 256
OMEGA = 0.95
MAP_SIDE = 16
MIN_SIDE = 8


@dataclass(frozen=True)
class HazeEvidence:
    """What the haze estimator measured on one image."""

    atmospheric_light: tuple[float, float, float]
    dark_channel_mean: float
    """Mean dark channel of I / A (0 = haze-free by the prior)."""
    raw_transmission: float
    """1 - omega * mean dark channel, before calibration."""
    transmission_map: tuple[tuple[float, ...], ...]
    """Raw transmission averaged to at most 16 x 16 cells, top row first."""


def estimate_haze(images: torch.Tensor, noise_sigmas_255: list[float] | None = None) -> list[HazeEvidence | None]:
    """Haze evidence per image of a batch [B,3,H,W] in 0..1 (None when an image is too small)."""
    b, _, h, w = images.shape
    if min(h, w) < MIN_SIDE:
        return [None] * b
    small = resize_max_side(images.float(), ANALYSIS_SIDE)
    sh, sw = small.shape[-2:]
    factor = max(h / sh, w / sw)
    noise = noise_sigmas_255 or [0.0] * b
    # Blur enough that the remaining noise (after area averaging by `factor`) is below ~1.5/255.
    smoothed = []
    for i in range(b):
        residual = noise[i] / max(1.0, factor)
        sigma_px = min(3.0, max(0.0, 0.6 * (residual / 1.5 - 1.0))) if residual > 1.5 else 0.0
        smoothed.append(gaussian_blur(small[i:i + 1], sigma_px) if sigma_px > 0 else small[i:i + 1])
    small = torch.cat(smoothed)
    radius = max(1, round(min(sh, sw) / 40))
    dark = dark_channel(small, radius)
    light = estimate_atmospheric_light(small, dark).clamp(min=0.05)
    dark_norm = dark_channel(small / light[:, :, None, None], radius).clamp(0.0, 1.0)
    raw_t = 1.0 - OMEGA * dark_norm
    cells = F.adaptive_avg_pool2d(raw_t, (min(MAP_SIDE, sh), min(MAP_SIDE, sw)))
    out: list[HazeEvidence | None] = []
    for i in range(b):
        out.append(HazeEvidence(
            atmospheric_light=tuple(float(v) for v in light[i]),
            dark_channel_mean=float(dark_norm[i].mean()),
            raw_transmission=float(raw_t[i].mean()),
            transmission_map=tuple(tuple(float(v) for v in row) for row in cells[i, 0])))
    return out
