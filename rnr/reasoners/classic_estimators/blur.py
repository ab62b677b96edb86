"""Blur: extent, kind and direction from the width of the image's strongest edges.

A sharp step edge blurred by a kernel becomes a ramp whose 10-90 % rise width is proportional to the
kernel's extent across the edge: the full extent for a defocus disk or a gaussian, ``L*|cos(a)|``
for a motion blur of length L at angle a to the edge normal (Marziliano et al.'s edge-width idea).
We pick the strongest edges in each of 12 edge-normal directions (so that blurred directions are
not crowded out by sharp ones), read a luminance profile across each one at the original
resolution, and take the median rise width per direction. Equal widths in every direction mean
defocus or gaussian blur; widths that swing with direction mean motion blur along the widest one.
Noise is first flattened by an edge-preserving (guided) filter that keeps strong ramps; the light
gaussian smoothing that follows is removed again in quadrature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...filters import guided_filter
from ._ops import gaussian_blur, luminance, native_tiles

TILE = 384
GRID = 2
DIRECTION_BINS = 12
EDGES_PER_BIN = 400
PROFILE_HALF_PX = 40
PROFILE_STEP_PX = 0.5
MIN_EDGE_CONTRAST = 0.08
MIN_SIDE = 24
NOISE_FLOOR = 2.0 / 255.0
GUIDED_RADIUS = 2
GUIDED_PASSES = 2
GUIDED_EPS_SIGMAS = 2.5
SMOOTHING_PX = 0.7
TOLERANCE_SIGMAS = 0.1
WIDTH_QUANTILE = 0.25


@dataclass(frozen=True)
class BlurEvidence:
    """What the blur estimator measured on one image (widths in pixels of the original image)."""

    widths_px: tuple[float, ...]
    """Median 10-90 % edge rise width per edge-normal direction bin (NaN where too few edges)."""
    bin_angles_deg: tuple[float, ...]
    """Centre of each direction bin, degrees counter-clockwise from horizontal."""
    edge_count: int
    isotropic_width_px: float
    """Median rise width over all directions."""
    widest_px: float
    narrowest_px: float
    widest_angle_deg: float
    """Direction (edge normal) of the widest edges, degrees counter-clockwise from horizontal."""
    kurtosis: float
    """Median kurtosis of the edges' derivative profiles (1.8 ramp, 2 disk, 3 gaussian)."""
    smoothing_sigma_px: float


def _sample(images: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of images [N,1,H,W] at pixel coordinates px, py [N, K, S] -> [N, K, S]."""
    h, w = images.shape[-2:]
    grid = torch.stack([px / max(1, w - 1) * 2 - 1, py / max(1, h - 1) * 2 - 1], dim=-1)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border",
                         align_corners=True)[:, 0]


def _edge_profiles(y: torch.Tensor, noise_sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Profiles across the strongest edges of one luminance stack y [k,1,H,W].

    Returns profiles [E, S] (rising along the gradient), edge-normal angles [E] in degrees and the
    per-edge contrast [E].
    """
    k, _, h, w = y.shape
    gx = torch.zeros_like(y)
    gy = torch.zeros_like(y)
    gx[..., 1:-1] = (y[..., 2:] - y[..., :-2]) / 2
    gy[..., 1:-1, :] = (y[..., 2:, :] - y[..., :-2, :]) / 2
    mag = torch.sqrt(gx ** 2 + gy ** 2)
    border = 3
    inner = torch.zeros_like(mag, dtype=torch.bool)
    inner[..., border:h - border, border:w - border] = True
    # Non-maximum suppression across the edge keeps one pixel per edge.
    nx, ny = gx / mag.clamp(min=1e-8), gy / mag.clamp(min=1e-8)
    yy, xx = torch.meshgrid(torch.arange(h, device=y.device, dtype=y.dtype),
                            torch.arange(w, device=y.device, dtype=y.dtype), indexing="ij")
    ahead = _sample(mag, (xx + nx[:, 0])[:, None].flatten(2), (yy + ny[:, 0])[:, None].flatten(2))
    behind = _sample(mag, (xx - nx[:, 0])[:, None].flatten(2), (yy - ny[:, 0])[:, None].flatten(2))
    flat_mag = mag.flatten(1)
    is_peak = (flat_mag >= ahead[:, 0]) & (flat_mag >= behind[:, 0]) & inner.flatten(1) & (flat_mag > 0.004)
    angle = torch.rad2deg(torch.atan2(-gy, gx)).flatten(1) % 180.0
    bins = (angle / (180.0 / DIRECTION_BINS) + 0.5).long() % DIRECTION_BINS
    score = torch.where(is_peak, flat_mag, torch.zeros_like(flat_mag))
    chosen_tile, chosen_index = [], []
    for b in range(DIRECTION_BINS):
        in_bin = torch.where(bins == b, score, torch.zeros_like(score)).flatten()
        count = min(EDGES_PER_BIN, int((in_bin > 0).sum()))
        if count == 0:
            continue
        top = torch.topk(in_bin, count).indices
        chosen_tile.append(top // (h * w))
        chosen_index.append(top % (h * w))
    if not chosen_tile:
        empty = y.new_zeros((0,))
        return y.new_zeros((0, 1)), empty, empty
    tile_idx = torch.cat(chosen_tile)
    pix = torch.cat(chosen_index)
    ex = (pix % w).to(y.dtype)
    ey = (pix // w).to(y.dtype)
    enx = nx.flatten(1)[tile_idx, pix]
    eny = ny.flatten(1)[tile_idx, pix]
    steps = torch.arange(-PROFILE_HALF_PX, PROFILE_HALF_PX + PROFILE_STEP_PX / 2, PROFILE_STEP_PX,
                         device=y.device, dtype=y.dtype)
    px = ex[:, None] + enx[:, None] * steps[None]
    py = ey[:, None] + eny[:, None] * steps[None]
    profiles = torch.empty(px.shape, device=y.device, dtype=y.dtype)
    for t in range(k):
        sel = tile_idx == t
        if bool(sel.any()):
            profiles[sel] = _sample(y[t:t + 1], px[sel][None], py[sel][None])[0]
    # Walk outward from the edge to the first step where the profile stops rising (the local
    # extrema that bound the edge), with a tolerance above the remaining noise.
    tolerance = 0.0015 + noise_sigma
    centre = len(steps) // 2
    rises = profiles[:, 1:] - profiles[:, :-1]
    stop_right = rises[:, centre:] <= tolerance
    right = centre + torch.where(stop_right.any(1), stop_right.float().argmax(1),
                                 torch.full_like(tile_idx, stop_right.shape[1] - 1))
    stop_left = rises[:, :centre].flip(1) <= tolerance
    left = centre - torch.where(stop_left.any(1), stop_left.float().argmax(1),
                                torch.full_like(tile_idx, stop_left.shape[1] - 1))
    low = profiles.gather(1, left[:, None])[:, 0]
    high = profiles.gather(1, right[:, None])[:, 0]
    contrast = high - low
    index = torch.arange(profiles.shape[1], device=y.device)[None]
    inside = (index >= left[:, None]) & (index <= right[:, None])
    level = (profiles - low[:, None]) / contrast[:, None].clamp(min=1e-6)
    level = torch.where(inside, level, torch.where(index < left[:, None], torch.zeros_like(level),
                                                   torch.ones_like(level)))
    edge_angles = torch.rad2deg(torch.atan2(-eny, enx)) % 180.0
    return level, edge_angles, contrast


def _kurtosis(level: torch.Tensor) -> torch.Tensor:
    """Kurtosis of each edge's derivative profile [E,S]: 1.8 for a ramp (motion), 2 for a defocus
    disk's semicircle, 3 for a gaussian."""
    density = (level[:, 1:] - level[:, :-1]).clamp(min=0)
    density = density / density.sum(dim=1, keepdim=True).clamp(min=1e-8)
    s = torch.arange(density.shape[1], device=level.device, dtype=level.dtype)[None]
    mean = (density * s).sum(dim=1, keepdim=True)
    var = (density * (s - mean) ** 2).sum(dim=1)
    return (density * (s - mean) ** 4).sum(dim=1) / var.clamp(min=1e-8) ** 2


def _rise_width(level: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Width in px over which each normalised, rising profile [E,S] goes from ``low`` to ``high``."""
    return ((level > low) & (level < high)).sum(dim=1).to(level.dtype) * PROFILE_STEP_PX


def estimate_blur(images: torch.Tensor, noise_sigmas_255: list[float] | None = None) -> list[BlurEvidence | None]:
    """Blur evidence per image of a batch [B,3,H,W] in 0..1 (None when an image is too small or flat)."""
    b, _, h, w = images.shape
    if min(h, w) < MIN_SIDE:
        return [None] * b
    noise = noise_sigmas_255 or [0.0] * b
    tiles, k = native_tiles(images.float(), TILE, GRID)
    tiles = luminance(tiles)
    tiles = tiles.reshape(b, k, 1, *tiles.shape[-2:])
    centres = [(i + 0.0) * 180.0 / DIRECTION_BINS for i in range(DIRECTION_BINS)]
    out: list[BlurEvidence | None] = []
    for i in range(b):
        sigma = float(noise[i]) / 255.0
        y = tiles[i]
        if sigma > NOISE_FLOOR:
            # Edge-preserving smoothing flattens the noise but keeps the ramps of strong edges.
            for _ in range(GUIDED_PASSES):
                y = guided_filter(y, y, GUIDED_RADIUS, (GUIDED_EPS_SIGMAS * sigma) ** 2)
        smoothing = SMOOTHING_PX
        y = gaussian_blur(y, smoothing)
        level, angles, contrast = _edge_profiles(y, TOLERANCE_SIGMAS * sigma)
        keep = contrast > MIN_EDGE_CONTRAST
        level, angles = level[keep], angles[keep]
        if level.shape[0] < 20:
            out.append(None)
            continue
        w1090 = _rise_width(level, 0.1, 0.9)
        # Smoothing by a gaussian adds 2.56*sigma of 10-90 width in quadrature.
        w1090 = torch.sqrt((w1090 ** 2 - (2.563 * smoothing) ** 2).clamp(min=0.25))
        bins = (angles / (180.0 / DIRECTION_BINS) + 0.5).long() % DIRECTION_BINS
        widths = []
        for j in range(DIRECTION_BINS):
            sel = w1090[bins == j]
            widths.append(float(sel.quantile(WIDTH_QUANTILE)) if sel.numel() >= 10 else math.nan)
        finite = [v for v in widths if math.isfinite(v)]
        if len(finite) < DIRECTION_BINS // 2:
            out.append(None)
            continue
        # Smooth across neighbouring bins (circularly) so one odd bin cannot fake a direction.
        padded = torch.tensor(widths)
        valid = torch.isfinite(padded)
        filled = torch.where(valid, padded, torch.tensor(float(torch.tensor(finite).median())))
        smooth = (filled.roll(1) + 2 * filled + filled.roll(-1)) / 4
        widest = int(smooth.argmax())
        narrow = int(smooth.argmin())
        shape = float(_kurtosis(level).median())
        out.append(BlurEvidence(
            widths_px=tuple(round(v, 3) for v in widths), bin_angles_deg=tuple(centres), edge_count=int(level.shape[0]),
            isotropic_width_px=float(w1090.quantile(WIDTH_QUANTILE)), widest_px=float(smooth[widest]), narrowest_px=float(smooth[narrow]),
            widest_angle_deg=centres[widest], kurtosis=shape, smoothing_sigma_px=smoothing))
    return out
