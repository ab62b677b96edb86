"""Blur kernels: straight and camera-shake motion paths, anti-aliased defocus disks and gaussians.

Kernels are float32 [K,K] tensors (K odd, centred, summing to 1) indexed [row, column] with rows going
down. A motion path is a list of (x, y) points in pixels, y going down, sampled uniformly in exposure
time; its extent and angle are those of the calibration: sqrt(12) times the standard deviation along
the principal axis (the length of a straight line) and that axis in degrees from horizontal,
counter-clockwise as seen on screen, in [0, 180).
"""

from __future__ import annotations

import math

import torch

from .seeding import Streams


def path_extent_angle(points: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[float, float]:
    """(extent_px, angle_deg) of a motion path [N,2] (optionally weighted) by its principal axis."""
    points = points.double()
    weights = torch.ones(points.shape[0], dtype=torch.float64) if weights is None else weights.double()
    weights = weights / weights.sum()
    mean = (weights[:, None] * points).sum(dim=0)
    centred = points - mean
    cxx = float((weights * centred[:, 0] ** 2).sum())
    cyy = float((weights * centred[:, 1] ** 2).sum())
    cxy = float((weights * centred[:, 0] * centred[:, 1]).sum())
    largest = 0.5 * (cxx + cyy) + math.sqrt(0.25 * (cxx - cyy) ** 2 + cxy ** 2)
    # Principal axis of [[cxx, cxy], [cxy, cyy]] in (x, y_down); the screen angle flips y.
    axis = 0.5 * math.atan2(2.0 * cxy, cxx - cyy)
    angle = math.degrees(-axis) % 180.0
    return math.sqrt(12.0 * max(largest, 0.0)), angle


def linear_path(extent_px: float, angle_deg: float, samples: int = 0) -> torch.Tensor:
    """A straight path of length ``extent_px`` through the origin at ``angle_deg``."""
    samples = samples or max(2, math.ceil(extent_px * 4))
    # Midpoints of equal pieces: their spread is that of the continuous segment, to 1/samples^2.
    s = ((torch.arange(samples, dtype=torch.float64) + 0.5) / samples - 0.5) * extent_px
    angle = math.radians(angle_deg)
    return torch.stack([s * math.cos(angle), -s * math.sin(angle)], dim=1)


def shake_path(streams: Streams, extent_px: float, angle_deg: float,
               steps: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """A random hand-shake trajectory (inertia, drift back to centre, speed changes, occasional jerks)
    rotated and scaled so that its principal axis has ``angle_deg`` and its extent is ``extent_px``.

    Returns points [N,2] at most 0.25 px apart and their exposure-time weights [N].
    """
    if extent_px <= 0:
        return torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    wobble = streams.uniform(0.05, 0.6)
    jerk_rate = streams.uniform(0.0, 0.08)
    speed_change = streams.uniform(0.0, 0.5)
    draws = torch.randn(steps, 5, generator=streams.params, dtype=torch.float64).tolist()
    jerks = torch.rand(steps, generator=streams.params, dtype=torch.float64).tolist()
    direction = torch.rand((), generator=streams.params).item() * 2 * math.pi
    vx, vy = math.cos(direction), math.sin(direction)
    x = y = 0.0
    speed = 1.0
    points = []
    for step in range(steps):
        points.append((x, y))
        ax = wobble * draws[step][0] - 0.02 * x
        ay = wobble * draws[step][1] - 0.02 * y
        if jerks[step] < jerk_rate:
            ax += 2.0 * draws[step][2]
            ay += 2.0 * draws[step][3]
        vx, vy = vx + ax, vy + ay
        norm = math.hypot(vx, vy) or 1.0
        speed = min(3.0, max(0.2, speed * math.exp(speed_change * 0.3 * draws[step][4])))
        vx, vy = vx / norm, vy / norm
        x, y = x + speed * vx, y + speed * vy
    path = torch.tensor(points, dtype=torch.float64)
    raw_extent, _ = path_extent_angle(path)
    if raw_extent <= 1e-9:
        line = linear_path(extent_px, angle_deg)
        return line, torch.ones(line.shape[0], dtype=torch.float64)
    points_dense, weights = _densify(path * (extent_px / raw_extent))
    extent, angle = path_extent_angle(points_dense, weights)
    centre = (weights[:, None] * points_dense).sum(dim=0) / weights.sum()
    turn = math.radians(angle_deg - angle)
    # Rotating by +turn on screen (y down) is a clockwise matrix in (x, y_down) coordinates.
    rotation = torch.tensor([[math.cos(turn), math.sin(turn)], [-math.sin(turn), math.cos(turn)]], dtype=torch.float64)
    return (points_dense - centre) @ rotation.T * (extent_px / extent), weights


def _densify(path: torch.Tensor, spacing: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of a polyline at most ``spacing`` px apart, each weighted by its share of exposure time
    (every step of the path lasts the same time, so fast steps spread their light thinner)."""
    segments = path[1:] - path[:-1]
    lengths = segments.norm(dim=1)
    pieces, weights = [], []
    for start, segment, length in zip(path[:-1], segments, lengths.tolist()):
        parts = max(1, math.ceil(length / spacing))
        t = (torch.arange(parts, dtype=torch.float64)[:, None] + 0.5) / parts
        pieces.append(start[None] + t * segment[None])
        weights.append(torch.full((parts,), 1.0 / parts, dtype=torch.float64))
    return torch.cat(pieces), torch.cat(weights)


def rasterise_path(path: torch.Tensor, weights: torch.Tensor | None = None, size: int | None = None) -> torch.Tensor:
    """A motion kernel from a path: each point splatted bilinearly (with its weight) around the centre."""
    if weights is None:
        weights = torch.ones(path.shape[0], dtype=torch.float64)
    reach = float(path.abs().max()) if path.numel() else 0.0
    size = size or 2 * math.ceil(reach + 1.0) + 1
    centre = size // 2
    xs, ys = path[:, 0] + centre, path[:, 1] + centre
    x0, y0 = torch.floor(xs), torch.floor(ys)
    fx, fy = xs - x0, ys - y0
    kernel = torch.zeros(size * size, dtype=torch.float64)
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        cx, cy = (x0 + dx).long(), (y0 + dy).long()
        inside = (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
        kernel.index_add_(0, (cy * size + cx)[inside], (w * weights)[inside])
    kernel = kernel.view(size, size)
    return (kernel / kernel.sum()).float()


def defocus_kernel(diameter_px: float) -> torch.Tensor:
    """An anti-aliased uniform disk of the given diameter (8x8 supersampled per pixel)."""
    radius = diameter_px / 2.0
    if radius < 0.5:
        return _delta_blend(radius / 0.5, gaussian_kernel(max(radius, 1e-3)))
    size = 2 * math.ceil(radius + 0.5) + 1
    centre = size // 2
    sub = (torch.arange(8, dtype=torch.float64) + 0.5) / 8 - 0.5
    grid = torch.arange(size, dtype=torch.float64) - centre
    ys = (grid[:, None] + sub[None, :]).reshape(-1)
    inside = ((ys[:, None] ** 2 + ys[None, :] ** 2) <= radius ** 2).double()
    kernel = inside.view(size, 8, size, 8).mean(dim=(1, 3))
    return (kernel / kernel.sum()).float()


def gaussian_kernel(sigma_px: float) -> torch.Tensor:
    """A normalised isotropic gaussian of standard deviation ``sigma_px`` (pixel-integrated)."""
    if sigma_px <= 1e-3:
        return torch.ones(1, 1)
    radius = max(1, math.ceil(3.0 * sigma_px))
    edges = torch.arange(-radius, radius + 2, dtype=torch.float64) - 0.5
    cdf = 0.5 * (1.0 + torch.erf(edges / (sigma_px * math.sqrt(2.0))))
    taps = cdf[1:] - cdf[:-1]
    kernel = taps[:, None] * taps[None, :]
    return (kernel / kernel.sum()).float()


def _delta_blend(weight: float, kernel: torch.Tensor) -> torch.Tensor:
    delta = torch.zeros_like(kernel)
    centre = kernel.shape[0] // 2
    delta[centre, centre] = 1.0
    return (1.0 - weight) * delta + weight * kernel


def motion_kernels(streams: Streams, extent_px: float, angle_deg: float, path: str,
                   scales: tuple[float, ...] = (1.0,)) -> list[torch.Tensor]:
    """Motion kernels along one 'linear' or 'shake' path, one per scale of its extent."""
    if path == "linear":
        return [rasterise_path(linear_path(extent_px * scale, angle_deg)) for scale in scales]
    points, weights = shake_path(streams, extent_px, angle_deg)
    return [rasterise_path(points * scale, weights) for scale in scales]
