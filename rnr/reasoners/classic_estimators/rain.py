"""Rain: oriented, bright, thin-line energy from the image Hessian.

A rain streak is a thin line brighter than what lies behind it, and the streaks of one shower share
a direction. At each pixel the Hessian of the gaussian-smoothed luminance tells a bright line (one
strongly negative eigenvalue across it, a near-zero one along it) from a dark line (the mirror
image) and gives its direction. Natural texture (grass, hair, branches) has bright and dark lines in
about equal measure and in many directions; rain adds bright lines only, all at one angle. So the
evidence is the bright-line energy within +-15 degrees of the dominant bright direction against the
energy across it and against dark lines, how concentrated it is, and the streak length from
the autocorrelation of the aligned bright-line map along the streaks. Analysed on a copy of at most
512 px; lengths are given in pixels of the original image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...filters import gaussian_blur, resize_max_side, rgb_to_luma

ANALYSIS_SIDE = 512
SCALES_PX = (1.0, 1.8)
ANGLE_BINS = 36
WINDOW_DEG = 15.0
MAX_LAG_PX = 96
MAX_TILT_DEG = 50.0
MIN_SIDE = 24


@dataclass(frozen=True)
class RainEvidence:
    """What the rain estimator measured on one image."""

    angle_deg: float
    """Dominant bright-line direction, degrees from vertical, positive leaning right at the top."""
    bright_energy: float
    """Mean bright-line strength per pixel within +-15 degrees of the dominant direction."""
    dark_energy: float
    """The same for dark lines."""
    cross_energy: float
    """Bright-line strength per pixel within +-15 degrees of the perpendicular direction."""
    concentration: float
    """Share of all bright-line strength that lies within +-15 degrees of the dominant direction."""
    asymmetry: float
    """(bright - dark) / (bright + dark) within +-15 degrees of the dominant direction."""
    length_px: float
    """Streak length from the autocorrelation along the streaks, in pixels of the original image."""


def _line_maps(y: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bright-line strength, dark-line strength and line angle (deg from vertical) for y [B,1,H,W]."""
    s = gaussian_blur(y, sigma)
    pad = torch.nn.functional.pad(s, (1, 1, 1, 1), mode="replicate")
    c = pad[..., 1:-1, 1:-1]
    ixx = pad[..., 1:-1, 2:] - 2 * c + pad[..., 1:-1, :-2]
    iyy = pad[..., 2:, 1:-1] - 2 * c + pad[..., :-2, 1:-1]
    ixy = (pad[..., 2:, 2:] - pad[..., 2:, :-2] - pad[..., :-2, 2:] + pad[..., :-2, :-2]) / 4
    scale = sigma ** 2
    ixx, iyy, ixy = ixx * scale, iyy * scale, ixy * scale
    gx = (pad[..., 1:-1, 2:] - pad[..., 1:-1, :-2]) / 2 * sigma
    gy = (pad[..., 2:, 1:-1] - pad[..., :-2, 1:-1]) / 2 * sigma
    slope = torch.sqrt(gx ** 2 + gy ** 2)
    half_trace = (ixx + iyy) / 2
    root = torch.sqrt(((ixx - iyy) / 2) ** 2 + ixy ** 2)
    low, high = half_trace - root, half_trace + root  # low <= high
    # A line centre has curvature across it and no slope; the flanks of a step edge have both, so
    # the slope is subtracted to keep edges out.
    bright = (-low - high.abs() - slope).clamp(min=0)
    dark = (high - low.abs() - slope).clamp(min=0)
    # The eigenvector of the eigenvalue of larger magnitude points across the line.
    across_value = torch.where(low.abs() >= high.abs(), low, high)
    first_x, first_y = ixy, across_value - ixx
    second_x, second_y = across_value - iyy, ixy
    use_first = (first_x.abs() + first_y.abs()) >= (second_x.abs() + second_y.abs())
    across_x = torch.where(use_first, first_x, second_x)
    across_y = torch.where(use_first, first_y, second_y)
    degenerate = (across_x.abs() + across_y.abs()) < 1e-12
    across_x = torch.where(degenerate, torch.ones_like(across_x), across_x)
    # Across-direction (ax, ay) with y down; the line direction is perpendicular: (-ay, ax).
    lx, ly = -across_y, across_x
    angle = torch.rad2deg(torch.atan2(lx, -ly))  # from vertical, positive leaning right at the top
    angle = (angle + 90.0) % 180.0 - 90.0
    return bright, dark, angle


def _angle_histograms(weights: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Weighted histograms [B, ANGLE_BINS] over -90..90 degrees."""
    b = weights.shape[0]
    bins = ((angle + 90.0) / (180.0 / ANGLE_BINS)).long().clamp(0, ANGLE_BINS - 1).flatten(1)
    hist = torch.zeros(b, ANGLE_BINS, dtype=weights.dtype, device=weights.device)
    return hist.scatter_add_(1, bins, weights.flatten(1))


def _streak_length(aligned: torch.Tensor, angle_deg: torch.Tensor) -> torch.Tensor:
    """Twice the half-maximum lag of the autocorrelation of aligned maps [B,1,H,W] along each angle."""
    b, _, h, w = aligned.shape
    x = aligned[:, 0] - aligned[:, 0].mean(dim=(1, 2), keepdim=True)
    size = (2 * h, 2 * w)
    spectrum = torch.fft.rfft2(x, s=size)
    auto = torch.fft.fftshift(torch.fft.irfft2(spectrum.abs() ** 2, s=size), dim=(-2, -1))
    lags = torch.arange(0, min(MAX_LAG_PX, h - 1, w - 1) + 1, dtype=x.dtype, device=x.device)
    theta = torch.deg2rad(angle_deg)
    # Streak direction "up" on screen: (sin a, -cos a) with y down.
    px = size[1] // 2 + torch.sin(theta)[:, None] * lags[None]
    py = size[0] // 2 - torch.cos(theta)[:, None] * lags[None]
    grid = torch.stack([px / (size[1] - 1) * 2 - 1, py / (size[0] - 1) * 2 - 1], dim=-1)[:, None]
    curve = torch.nn.functional.grid_sample(auto[:, None], grid.to(x.dtype), align_corners=True)[:, 0, 0]
    curve = curve / curve[:, :1].clamp(min=1e-12)
    below = curve < 0.5
    below[:, 0] = False
    first = torch.where(below.any(dim=1), below.float().argmax(dim=1), torch.full((b,), len(lags) - 1, device=x.device))
    first = first.clamp(min=1)
    hi = curve.gather(1, first[:, None])[:, 0]
    lo = curve.gather(1, (first - 1)[:, None])[:, 0]
    frac = ((lo - 0.5) / (lo - hi).clamp(min=1e-6)).clamp(0, 1)
    return 2.0 * (first - 1 + frac)


def estimate_rain(images: torch.Tensor) -> list[RainEvidence | None]:
    """Rain evidence per image of a batch [B,3,H,W] in 0..1 (None when an image is too small)."""
    b, _, h, w = images.shape
    if min(h, w) < MIN_SIDE:
        return [None] * b
    small = resize_max_side(images.float(), ANALYSIS_SIDE)
    factor = max(h / small.shape[-2], w / small.shape[-1])
    y = rgb_to_luma(small)
    bright = dark = angle = None
    for sigma in SCALES_PX:
        br, dk, an = _line_maps(y, sigma)
        if bright is None:
            bright, dark, angle = br, dk, an
        else:
            stronger = (br + dk) > (bright + dark)
            bright = torch.where(stronger, br, bright)
            dark = torch.where(stronger, dk, dark)
            angle = torch.where(stronger, an, angle)
    hist_bright = _angle_histograms(bright, angle)
    hist_dark = _angle_histograms(dark, angle)
    width = int(round(WINDOW_DEG / (180.0 / ANGLE_BINS)))
    kernel = torch.ones(1, 1, 2 * width + 1, dtype=hist_bright.dtype, device=hist_bright.device)

    def window_sum(hist: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([hist[:, -width:], hist, hist[:, :width]], dim=1)[:, None]
        return torch.nn.functional.conv1d(padded, kernel)[:, 0]

    bright_win, dark_win = window_sum(hist_bright), window_sum(hist_dark)
    centres = -90.0 + (torch.arange(ANGLE_BINS, dtype=y.dtype, device=y.device) + 0.5) * (180.0 / ANGLE_BINS)
    # Rain falls within MAX_TILT_DEG of vertical (wind tilts it, it never runs sideways); near-horizontal
    # thin lines are railings, cables and window frames.
    plausible = centres.abs() <= MAX_TILT_DEG
    peak = torch.where(plausible[None], bright_win, torch.full_like(bright_win, -1.0)).argmax(dim=1)
    perpendicular = (peak + ANGLE_BINS // 2) % ANGLE_BINS
    pixels = float(y.shape[-2] * y.shape[-1])
    bin_width = 180.0 / ANGLE_BINS
    angles = -90.0 + (peak.to(y.dtype) + 0.5) * bin_width
    # Refine the angle by the bright-weighted circular mean (doubled angles) inside the window.
    diff = (angle - angles[:, None, None, None] + 90.0) % 180.0 - 90.0
    inside = diff.abs() <= WINDOW_DEG
    weight = bright * inside
    doubled = torch.deg2rad(2 * angle)
    mean_sin = (weight * torch.sin(doubled)).sum(dim=(1, 2, 3))
    mean_cos = (weight * torch.cos(doubled)).sum(dim=(1, 2, 3))
    refined = torch.where(weight.sum(dim=(1, 2, 3)) > 0, torch.rad2deg(torch.atan2(mean_sin, mean_cos)) / 2, angles)
    lengths = _streak_length(bright * inside, refined) * factor
    out: list[RainEvidence | None] = []
    for i in range(b):
        bw, dw = float(bright_win[i, peak[i]]), float(dark_win[i, peak[i]])
        total = float(hist_bright[i].sum())
        out.append(RainEvidence(
            angle_deg=float(refined[i]), bright_energy=bw / pixels, dark_energy=dw / pixels,
            cross_energy=float(bright_win[i, perpendicular[i]]) / pixels, concentration=bw / total if total > 0 else 0.0,
            asymmetry=(bw - dw) / (bw + dw) if bw + dw > 0 else 0.0, length_px=float(lengths[i])))
    return out
