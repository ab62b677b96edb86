"""Rain streaks: several layers of thin, tapered, slightly tilted lines in front of the scene.

Each layer is drawn by splatting points along its streaks (bilinear, wrapping at the borders so the
streak texture is seamless), then widened by a per-layer gaussian applied in the Fourier domain. The
layers add up to an opacity map ``o`` (clamped to 0..1) whose mean is the rain density of the
calibration: the opacity-weighted fraction of the image covered by streaks. Streaks blend with the
scene by screen, add or alpha-over in a near-white colour.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..diagnosis import Rain, calibration
from .params import RainParams
from .seeding import Streams

# sqrt(2*pi) / (2*sqrt(2*ln 2)): the area under a gaussian profile of unit peak per unit of its FWHM.
_GAUSS_AREA_PER_FWHM = 1.0645


def resolve(spec: float | RainParams, streams: Streams, height: int, width: int) -> RainParams:
    """Fill every free rain parameter; a number is a severity 1..100. Lengths scale with the image."""
    if not isinstance(spec, RainParams):
        spec = RainParams(density=round(calibration.rain_density_from_severity(spec), 8))
    params = spec
    shorter = min(height, width)
    fill = {}
    if params.density is None:
        fill["density"] = round(calibration.rain_density_from_severity(
            streams.integer(calibration.MIN_SYNTH_SEVERITY, 100)), 8)
    if params.angle_deg is None:
        steep = streams.uniform() < 0.5
        angle = streams.normal(0.0, 8.0) if steep else streams.uniform(-40.0, 40.0)
        fill["angle_deg"] = round(max(-70.0, min(70.0, angle)), 2)
    if params.angle_spread_deg is None:
        spread = streams.choice(((0.0, 3.0), (3.0, 10.0), (10.0, 25.0)), (0.5, 0.35, 0.15))
        fill["angle_spread_deg"] = round(streams.uniform(*spread), 2)
    if params.length_px is None:
        low, high = max(6.0, 0.04 * shorter), max(12.0, 0.3 * shorter)
        fill["length_px"] = round(streams.log_uniform(low, high), 2)
    if params.width_px is None:
        fill["width_px"] = round(streams.uniform(1.0, 3.0), 2)
    if params.layers is None:
        fill["layers"] = streams.choice((1, 2, 3, 4), (0.25, 0.35, 0.25, 0.15))
    if params.opacity is None:
        fill["opacity"] = round(streams.uniform(0.25, 0.95), 3)
    if params.blend is None:
        fill["blend"] = streams.choice(("screen", "add", "over"), (0.4, 0.3, 0.3))
    if params.colour is None:
        level = streams.uniform(0.8, 1.0)
        fill["colour"] = tuple(round(min(1.0, level + streams.uniform(-0.04, 0.04)), 4) for _ in range(3))
    if params.softness_px is None:
        fill["softness_px"] = round(streams.uniform(0.0, 1.2) if streams.uniform() < 0.4 else 0.0, 3)
    return dataclasses.replace(params, **fill)


@dataclasses.dataclass
class _Layer:
    angle_deg: float
    length_px: float
    width_px: float
    peak: float
    taper_power: float
    share: float


def _layers(p: RainParams, streams: Streams) -> list[_Layer]:
    """Per-layer streak statistics: farther layers are shorter, thinner and fainter."""
    layers = []
    distances = sorted(streams.uniform(0.6, 1.4) for _ in range(p.layers))
    for distance in distances:
        layers.append(_Layer(
            angle_deg=p.angle_deg + streams.normal(0.0, 0.7 * p.angle_spread_deg),
            length_px=max(2.0, p.length_px * distance),
            width_px=min(4.0, max(1.0, p.width_px * math.sqrt(distance))),
            peak=min(1.0, p.opacity * streams.uniform(0.6, 1.0) * distance ** 0.5),
            taper_power=streams.uniform(1.5, 6.0),
            share=streams.uniform(0.3, 1.0),
        ))
    total = sum(layer.share for layer in layers)
    for layer in layers:
        layer.share /= total
    return layers


def _splat_layer(buffer: torch.Tensor, plane: int, layer: _Layer, density: float, p: RainParams,
                 streams: Streams, height: int, width: int) -> tuple[float, float]:
    """Add one layer's streak centre lines to ``buffer`` [planes*H*W]; returns (streak mass, length mass)."""
    taper_mean = layer.taper_power / (layer.taper_power + 1.0)
    mass_per_streak = layer.peak * layer.width_px * _GAUSS_AREA_PER_FWHM * layer.length_px * taper_mean
    count = round(layer.share * density * height * width / max(mass_per_streak, 1e-6))
    if density > 0:
        count = max(1, count)
    if count == 0:
        return 0.0, 0.0
    device = buffer.device
    lengths = layer.length_px * torch.exp(0.25 * streams.randn(count)).clamp(0.5, 2.0)
    peaks = layer.peak * (0.5 + 0.5 * streams.rand(count))
    angles = torch.deg2rad(layer.angle_deg + 0.7 * p.angle_spread_deg * streams.randn(count))
    centres_x = streams.rand(count) * width
    centres_y = streams.rand(count) * height
    samples = math.ceil(float(lengths.max())) + 1
    s = torch.linspace(-0.5, 0.5, samples, device=device)
    taper = 1.0 - (2.0 * s.abs()) ** layer.taper_power
    # Up along the streak: leaning right at the top for a positive angle (y grows downwards).
    xs = centres_x[:, None] + s[None, :] * lengths[:, None] * torch.sin(angles)[:, None]
    ys = centres_y[:, None] - s[None, :] * lengths[:, None] * torch.cos(angles)[:, None]
    weights = (peaks * layer.width_px * _GAUSS_AREA_PER_FWHM * lengths / samples)[:, None] * taper[None, :]
    xs, ys, weights = xs.flatten(), ys.flatten(), weights.flatten()
    x0, y0 = torch.floor(xs), torch.floor(ys)
    fx, fy = xs - x0, ys - y0
    x0, y0 = x0.long(), y0.long()
    base = plane * height * width
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        index = base + ((y0 + dy) % height) * width + (x0 + dx) % width
        buffer.index_add_(0, index, weights * w)
    streak_mass = float((peaks * lengths).sum()) * layer.width_px * _GAUSS_AREA_PER_FWHM * taper_mean
    return streak_mass, float((peaks * lengths * lengths).sum()) * layer.width_px * _GAUSS_AREA_PER_FWHM * taper_mean


def _gaussian_transfer(sigmas: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Fourier transfer functions [planes,1,H,W//2+1] of gaussian blurs with the given sigmas (px)."""
    fy = torch.fft.fftfreq(height, device=sigmas.device)[:, None]
    fx = torch.fft.rfftfreq(width, device=sigmas.device)[None, :]
    radius2 = (fy ** 2 + fx ** 2)[None]
    return torch.exp(-2.0 * math.pi ** 2 * sigmas[:, None, None] ** 2 * radius2)


def opacity_maps(params: list[RainParams], streams: Streams, height: int,
                 width: int) -> tuple[torch.Tensor, list[float]]:
    """Streak opacity maps [n,1,H,W] in 0..1 and the mass-weighted mean streak length of each image."""
    count = len(params)
    plane_layers = [_layers(p, streams) for p in params]
    planes = sum(len(layers) for layers in plane_layers)
    buffer = torch.zeros(planes * height * width, device=streams.device)
    sigmas, owners, mean_lengths = [], [], []
    plane = 0
    for i, (p, layers) in enumerate(zip(params, plane_layers)):
        total_mass = total_length_mass = 0.0
        for layer in layers:
            mass, length_mass = _splat_layer(buffer, plane, layer, p.density, p, streams, height, width)
            total_mass += mass
            total_length_mass += length_mass
            # Splatting already spreads a line by sigma^2 ~ 1/6 px^2; the gaussian adds the rest of the width.
            sigma_width = layer.width_px / 2.3548
            sigmas.append(math.sqrt(max(sigma_width ** 2 - 1.0 / 6.0, 0.0) + p.softness_px ** 2))
            owners.append(i)
            plane += 1
        mean_lengths.append(total_length_mass / total_mass if total_mass > 0 else 0.0)
    spectra = torch.fft.rfft2(buffer.view(planes, height, width))
    spectra = spectra * _gaussian_transfer(torch.tensor(sigmas, device=streams.device), height, width)
    summed = torch.zeros(count, height, width // 2 + 1, dtype=spectra.dtype, device=streams.device)
    summed.index_add_(0, torch.tensor(owners, device=streams.device), spectra)
    opacity = torch.fft.irfft2(summed, s=(height, width)).clamp_min(0.0)[:, None]
    return opacity, mean_lengths


def _match_density(opacity: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Scale each opacity map so that mean(clamp(o, 0, 1)) meets its target (overlaps saturate)."""
    scale = torch.ones_like(targets)
    for _ in range(4):
        measured = (opacity * scale[:, None, None, None]).clamp(0.0, 1.0).mean(dim=(1, 2, 3))
        scale = scale * torch.where(measured > 0, targets / measured.clamp_min(1e-9), torch.ones_like(scale))
        scale = scale.clamp(0.3, 4.0)
    return (opacity * scale[:, None, None, None]).clamp(0.0, 1.0)


def apply(images: torch.Tensor, params: list[RainParams], streams: Streams) -> tuple[torch.Tensor, list[Rain]]:
    """Add rain to ``images`` [n,3,H,W] with one resolved parameter set per image."""
    _count, _, height, width = images.shape
    device = images.device
    raw, mean_lengths = opacity_maps(params, streams, height, width)
    targets = torch.tensor([p.density for p in params], device=device)
    opacity = _match_density(raw, targets)
    colour = torch.tensor([p.colour for p in params], device=device)[:, :, None, None]
    streaks = opacity * colour
    out = torch.empty_like(images)
    for blend in ("screen", "add", "over"):
        chosen = [i for i, p in enumerate(params) if p.blend == blend]
        if not chosen:
            continue
        idx = torch.tensor(chosen, device=device)
        scene, layer, alpha = images[idx], streaks[idx], opacity[idx]
        if blend == "screen":
            mixed = 1.0 - (1.0 - scene) * (1.0 - layer)
        elif blend == "add":
            mixed = scene + layer
        else:
            mixed = scene * (1.0 - alpha) + layer
        out[idx] = mixed.clamp(0.0, 1.0)
    density = opacity.mean(dim=(1, 2, 3))
    records = []
    for i, p in enumerate(params):
        d = float(density[i])
        severity = calibration.severity_from_rain_density(d)
        records.append(Rain(present=severity > 0, severity=severity, density=round(d, 5),
                            angle_deg=round(p.angle_deg, 2), length_px=round(mean_lengths[i], 2)))
    return out, records
