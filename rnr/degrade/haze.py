"""Haze by the atmospheric scattering model I = J*t + A*(1-t), t = exp(-beta*d).

beta is solved per image so that the mean transmission hits the target; the ground truth reports the
mean transmission actually measured on the full-resolution map, the mean airlight colour and a coarse
transmission map.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..diagnosis import Haze, calibration
from ..filters import guided_filter
from .depth import random_depth
from .params import HazeParams
from .seeding import Streams, smooth_field

TRANSMISSION_MAP_SIDE = 16


def resolve(spec: float | HazeParams, streams: Streams, depth_given: bool) -> HazeParams:
    """Fill every free haze parameter; a number is a severity 1..100."""
    params = spec if isinstance(spec, HazeParams) else HazeParams(
        transmission=round(calibration.transmission_from_severity(spec), 6))
    if params.transmission is None:
        params = dataclasses.replace(params, transmission=round(calibration.transmission_from_severity(
            streams.integer(calibration.MIN_SYNTH_SEVERITY, 100)), 6))
    if params.atmospheric_light is None:
        params = dataclasses.replace(params, atmospheric_light=random_airlight(streams))
    if params.depth_model is None:
        model = "given" if depth_given else streams.choice(
            ("uniform", "vertical", "smooth", "image", "mixed"), (0.1, 0.25, 0.2, 0.2, 0.25))
        params = dataclasses.replace(params, depth_model=model)
    if params.depth_edges is None:
        snap = params.depth_model not in ("uniform", "given") and streams.uniform() < 0.5
        params = dataclasses.replace(params, depth_edges=snap)
    if params.airlight_variation is None:
        params = dataclasses.replace(params, airlight_variation=round(streams.uniform(0.0, 0.08), 4))
    return params


def random_airlight(streams: Streams) -> tuple[float, float, float]:
    """Near-white airlight: grey, bluish (clear-sky scattering) or yellowish (dust, smog)."""
    level = streams.uniform(0.72, 1.0)
    tint = streams.choice(("grey", "blue", "yellow"), (0.5, 0.3, 0.2))
    amount = streams.uniform(0.0, 0.1)
    if tint == "blue":
        colour = (level - amount, level - amount * 0.4, level)
    elif tint == "yellow":
        colour = (level, level - amount * 0.3, level - amount)
    else:
        jitter = [streams.uniform(-0.015, 0.015) for _ in range(3)]
        colour = tuple(level + j for j in jitter)
    return tuple(round(min(1.0, max(0.0, c)), 4) for c in colour)


def solve_beta(depth: torch.Tensor, target: torch.Tensor, iterations: int = 24) -> torch.Tensor:
    """beta [n] with mean(exp(-beta*depth)) = target [n] for depth [n,1,H,W].

    Bisection in log beta on an area-pooled copy of at most 32x32 pixels, then two Newton steps on the
    full map so that sharp depth edges do not bias the mean.
    """
    height, width = depth.shape[-2:]
    small = F.adaptive_avg_pool2d(depth, (min(32, height), min(32, width))).flatten(1)
    low = torch.full_like(target, -9.0)
    high = torch.full_like(target, 7.0)
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        mean_t = torch.exp(-torch.exp(middle)[:, None] * small).mean(dim=1)
        too_clear = mean_t > target
        low = torch.where(too_clear, middle, low)
        high = torch.where(too_clear, high, middle)
    beta = torch.exp(0.5 * (low + high))
    flat = depth.flatten(1)
    for _ in range(2):
        t = torch.exp(-beta[:, None] * flat)
        slope = (flat * t).mean(dim=1).clamp_min(1e-8)
        beta = (beta + (t.mean(dim=1) - target) / slope).clamp(1e-4, 1e3)
    return beta


def snap_to_edges(depth: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Depth [n,1,H,W] made piecewise smooth along the edges of ``images`` (fast guided filter)."""
    height, width = depth.shape[-2:]
    radius = max(2, min(height, width) // 24)
    subsample = max(1, min(4, radius // 2))
    guide = images.mean(dim=1, keepdim=True)
    snapped = guided_filter(guide, depth, radius, 2e-3, subsample=subsample)
    return snapped.clamp(float(depth.amin()) * 0.5, 1.0)


def working_size(height: int, width: int, longest: int = 128) -> tuple[int, int]:
    """The size at which smooth random fields (depth, airlight drift) are drawn before upsampling."""
    scale = min(1.0, longest / max(height, width))
    return max(2, round(height * scale)), max(2, round(width * scale))


def apply(images: torch.Tensor, params: list[HazeParams], streams: Streams,
          depth: torch.Tensor | None) -> tuple[torch.Tensor, list[Haze]]:
    """Haze ``images`` [n,3,H,W] with one resolved parameter set per image; ``depth`` [n,1,H,W] or None."""
    count, _, height, width = images.shape
    device = images.device
    small_size = working_size(height, width)
    small_images = F.adaptive_avg_pool2d(images, small_size)
    random_models = [p.depth_model if p.depth_model != "given" else "mixed" for p in params]
    small_depths = torch.stack([random_depth(small_images[i], random_models[i], streams) for i in range(count)])
    depth_maps = F.interpolate(small_depths, size=(height, width), mode="bilinear", align_corners=False)
    snap = [i for i, p in enumerate(params) if p.depth_edges and p.depth_model not in ("uniform", "given")]
    if snap:
        depth_maps = depth_maps.clone()
        depth_maps[snap] = snap_to_edges(depth_maps[snap], images[snap])
    if depth is not None:
        use_given = torch.tensor([p.depth_model == "given" for p in params], device=device)[:, None, None, None]
        depth_maps = torch.where(use_given, depth, depth_maps)
    target = torch.tensor([p.transmission for p in params], device=device)
    beta = solve_beta(depth_maps, target)
    transmission = torch.exp(-beta[:, None, None, None] * depth_maps)

    light = torch.tensor([p.atmospheric_light for p in params], device=device)[:, :, None, None]
    variation = torch.tensor([p.airlight_variation for p in params], device=device)[:, None, None, None]
    # Airlight is brighter towards the sky and drifts slowly across the frame.
    rows = torch.linspace(0.5, -0.5, small_size[0], device=device)[None, None, :, None]
    drift = 0.5 * smooth_field(streams, count, small_size[0], small_size[1], 2) + rows
    small_light = (light * (1.0 + variation * drift)).clamp(0.0, 1.0)
    airlight = F.interpolate(small_light, size=(height, width), mode="bilinear", align_corners=False)

    hazy = torch.lerp(airlight, images, transmission)

    mean_t = transmission.mean(dim=(1, 2, 3))
    mean_light = small_light.mean(dim=(2, 3))
    map_size = (min(TRANSMISSION_MAP_SIDE, height), min(TRANSMISSION_MAP_SIDE, width))
    coarse = F.adaptive_avg_pool2d(transmission, map_size)
    records = []
    for i in range(count):
        t = float(mean_t[i])
        severity = calibration.severity_from_transmission(t)
        records.append(Haze(
            present=severity > 0, severity=severity,
            atmospheric_light=tuple(round(float(v), 4) for v in mean_light[i]),
            transmission=round(t, 4),
            transmission_map=tuple(tuple(round(float(v), 3) for v in row) for row in coarse[i, 0]),
        ))
    return hazy, records
