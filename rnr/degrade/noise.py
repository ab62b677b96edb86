"""Sensor noise: gaussian, signal-dependent (poisson) and mixed, optionally channel- and space-correlated.

The noise at intensity x has variance sigma^2 * ((1 - f) + 2 f x), f the poisson fraction: pure
read noise (f = 0) is gaussian, pure shot noise (f = 1) is the gaussian approximation of
Poisson(x*k)/k with gain k = 0.5 / sigma^2. Either way the standard deviation at mid-grey is
``sigma_255`` / 255, which is what the calibration's noise severity measures. Channel correlation
mixes in a shared luminance component; spatial correlation blurs the white noise with a small gaussian
and renormalises it exactly, as demosaicing and denoising in a camera pipeline leave it. In the
'linear' domain the same model acts on linear light x^2.2, as on a sensor, and the display gamma then
lifts the noise in the shadows; its sigma is scaled so the std at mid-grey is still ``sigma_255``.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F

from ..diagnosis import Noise, calibration
from .params import GAMMA, NoiseParams
from .seeding import Streams


def resolve(spec: float | NoiseParams, streams: Streams) -> NoiseParams:
    """Fill every free noise parameter; a number is a severity 1..100."""
    if not isinstance(spec, NoiseParams):
        spec = NoiseParams(sigma_255=calibration.noise_sigma_from_severity(spec))
    params = spec
    fill = {}
    if params.sigma_255 is None:
        fill["sigma_255"] = calibration.noise_sigma_from_severity(streams.integer(calibration.MIN_SYNTH_SEVERITY, 100))
    if params.poisson_fraction is None:
        if params.kind == "gaussian":
            fraction = 0.0 if streams.uniform() < 0.6 else streams.uniform(0.0, 0.5)
        elif params.kind == "poisson":
            fraction = 1.0 if streams.uniform() < 0.6 else streams.uniform(0.5001, 1.0)
        else:
            fraction = streams.choice((0.0, 1.0, None), (0.35, 0.3, 0.35))
            if fraction is None:
                fraction = streams.uniform(0.0, 1.0)
        fill["poisson_fraction"] = round(fraction, 4)
    fraction = fill.get("poisson_fraction", params.poisson_fraction)
    if params.kind is None:
        fill["kind"] = "poisson" if fraction > 0.5 else "gaussian"
    if params.channel_correlation is None:
        fill["channel_correlation"] = round(streams.uniform(0.0, 0.9), 4) if streams.uniform() < 0.5 else 0.0
    if params.spatial_sigma_px is None:
        fill["spatial_sigma_px"] = round(streams.uniform(0.3, 1.2), 4) if streams.uniform() < 0.35 else 0.0
    if params.domain is None:
        fill["domain"] = streams.choice(("srgb", "linear"), (0.6, 0.4))
    return dataclasses.replace(params, **fill)


@functools.lru_cache(maxsize=1024)
def linear_sigma_for(sigma: float) -> float:
    """The std in linear light at mid-grey (0.5^gamma) whose noise, clipped to 0..1 and gamma-encoded,
    has std ``sigma`` (0..1 units) around mid-grey; solved by bisection on a quadrature of the normal."""
    if sigma <= 0:
        return 0.0
    z = torch.linspace(-7.0, 7.0, 1401, dtype=torch.float64)
    weights = torch.exp(-0.5 * z ** 2)
    weights = weights / weights.sum()
    mid = 0.5 ** GAMMA

    def encoded_std(linear_sigma: float) -> float:
        values = (mid + linear_sigma * z).clamp(0.0, 1.0) ** (1.0 / GAMMA)
        mean = (weights * values).sum()
        return float(torch.sqrt((weights * (values - mean) ** 2).sum()))

    low, high = 0.0, 2.0
    for _ in range(50):
        middle = 0.5 * (low + high)
        if encoded_std(middle) < sigma:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _correlate_spatially(noise: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """Blur each image's white noise [n,3,H,W] by its gaussian sigma and restore unit variance."""
    out = noise.clone()
    for i, sigma in enumerate(sigmas):
        if sigma <= 0:
            continue
        radius = max(1, math.ceil(3.0 * sigma))
        taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=noise.device)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        kernel = kernel / kernel.sum()
        # White noise through a separable kernel keeps variance * (sum k^2)^2; divide that back out.
        gain = float((kernel ** 2).sum())
        plane = noise[i:i + 1].transpose(0, 1)
        plane = F.pad(plane, (radius, radius, radius, radius), mode="circular")
        plane = F.conv2d(plane, kernel.view(1, 1, 1, -1))
        plane = F.conv2d(plane, kernel.view(1, 1, -1, 1))
        out[i] = plane.transpose(0, 1)[0] / gain
    return out


def apply(images: torch.Tensor, params: list[NoiseParams], streams: Streams) -> tuple[torch.Tensor, list[Noise]]:
    """Add noise to ``images`` [n,3,H,W] with one resolved parameter set per image; clamps to 0..1."""
    count, _, height, width = images.shape
    device = images.device
    white = streams.randn(count, 3, height, width)
    correlation = torch.tensor([p.channel_correlation for p in params], device=device)[:, None, None, None]
    if bool((correlation > 0).any()):
        shared = streams.randn(count, 1, height, width)
        white = torch.sqrt(1.0 - correlation) * white + torch.sqrt(correlation) * shared
    spatial = [p.spatial_sigma_px for p in params]
    if any(s > 0 for s in spatial):
        white = _correlate_spatially(white, spatial)
    sigma = torch.tensor([p.sigma_255 / 255.0 for p in params], device=device)[:, None, None, None]
    fraction = torch.tensor([p.poisson_fraction for p in params], device=device)[:, None, None, None]
    linear = torch.tensor([p.domain == "linear" for p in params], device=device)[:, None, None, None]
    if bool(linear.any()):
        mid = 0.5 ** GAMMA
        signal = torch.where(linear, images.clamp(0.0, 1.0) ** GAMMA, images)
        linear_sigma = torch.tensor([linear_sigma_for(p.sigma_255 / 255.0) for p in params], device=device)
        sigma = torch.where(linear, linear_sigma[:, None, None, None], sigma)
        level = torch.where(linear, signal / mid, 2.0 * signal)
        std = sigma * torch.sqrt((1.0 - fraction) + fraction * level)
        noisy = torch.addcmul(signal, std, white).clamp_(0.0, 1.0)
        noisy = torch.where(linear, noisy ** (1.0 / GAMMA), noisy)
    elif bool((fraction > 0).any()):
        std = sigma * torch.sqrt((1.0 - fraction) + 2.0 * fraction * images)
        noisy = torch.addcmul(images, std, white).clamp_(0.0, 1.0)
    else:
        noisy = torch.addcmul(images, sigma, white).clamp_(0.0, 1.0)
    records = []
    for p in params:
        severity = calibration.severity_from_noise_sigma(p.sigma_255)
        records.append(Noise(present=severity > 0, severity=severity, sigma_255=round(p.sigma_255, 3), kind=p.kind))
    return noisy, records
