"""Camera and lens blur: one kernel per image, applied by FFT over a reflect-padded image."""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from ..diagnosis import Blur, calibration
from ..fft import fast_length
from . import kernels
from .params import GAMMA, BlurParams
from .seeding import Streams, smooth_field


def resolve(spec: float | BlurParams, streams: Streams) -> BlurParams:
    """Fill every free blur parameter; a number is a severity 1..100."""
    if not isinstance(spec, BlurParams):
        spec = BlurParams(extent_px=round(calibration.blur_extent_from_severity(spec), 6))
    params = spec
    fill = {}
    if params.kind is None:
        fill["kind"] = streams.choice(("motion", "defocus", "gaussian"), (0.5, 0.25, 0.25))
    if params.extent_px is None:
        fill["extent_px"] = round(calibration.blur_extent_from_severity(
            streams.integer(calibration.MIN_SYNTH_SEVERITY, 100)), 6)
    kind = fill.get("kind", params.kind)
    if params.angle_deg is None:
        fill["angle_deg"] = round(streams.uniform(0.0, 180.0), 2) if kind == "motion" else 0.0
    if params.path is None:
        fill["path"] = streams.choice(("linear", "shake"), (0.4, 0.6)) if kind == "motion" else "linear"
    if params.variation is None:
        fill["variation"] = round(streams.uniform(0.2, 0.8), 4) if streams.uniform() < 0.3 else 0.0
    if params.linear_light is None:
        fill["linear_light"] = streams.uniform() < 0.5
    return dataclasses.replace(params, **fill)


def make_kernels(params: BlurParams, streams: Streams) -> list[torch.Tensor]:
    """The [K,K] kernel of one resolved blur, or two (smallest and largest extent) for a varying blur."""
    spread = params.variation or 0.0
    scales = (1.0 - spread / 2.0, 1.0 + spread / 2.0) if spread > 0 else (1.0,)
    if params.kind == "motion":
        return kernels.motion_kernels(streams, params.extent_px, params.angle_deg, params.path, scales)
    if params.kind == "defocus":
        return [kernels.defocus_kernel(params.extent_px * scale) for scale in scales]
    return [kernels.gaussian_kernel(params.extent_px * scale / 4.0) for scale in scales]


def make_kernel(params: BlurParams, streams: Streams) -> torch.Tensor:
    """The [K,K] kernel of one resolved blur at its mean extent."""
    return make_kernels(dataclasses.replace(params, variation=0.0), streams)[0]


def convolve(images: torch.Tensor, kernel_list: list[torch.Tensor]) -> torch.Tensor:
    """Convolve each image [n,3,H,W] with its own kernel (odd square, any sizes) by FFT, reflect padded."""
    count, _channels, height, width = images.shape
    size = max(k.shape[-1] for k in kernel_list)
    radius = size // 2
    if radius == 0:
        return images * torch.stack([k.reshape(()) for k in kernel_list]).to(images)[:, None, None, None]
    stack = torch.zeros(count, size, size, device=images.device)
    for i, k in enumerate(kernel_list):
        offset = (size - k.shape[-1]) // 2
        stack[i, offset:offset + k.shape[-1], offset:offset + k.shape[-1]] = k.to(images.device)
    mode = "reflect" if radius < min(height, width) else "replicate"
    padded = F.pad(images, (radius, radius, radius, radius), mode=mode)
    fft_h, fft_w = fast_length(height + 2 * radius), fast_length(width + 2 * radius)
    padded = F.pad(padded, (0, fft_w - padded.shape[-1], 0, fft_h - padded.shape[-2]))
    frame = torch.zeros(count, fft_h, fft_w, device=images.device)
    frame[:, :size, :size] = stack
    frame = torch.roll(frame, shifts=(-radius, -radius), dims=(1, 2))
    spectrum = torch.fft.rfft2(padded) * torch.fft.rfft2(frame)[:, None]
    out = torch.fft.irfft2(spectrum, s=(fft_h, fft_w))
    return out[..., radius:radius + height, radius:radius + width].clamp(0.0, 1.0)


def apply(images: torch.Tensor, params: list[BlurParams], streams: Streams) -> tuple[torch.Tensor, list[Blur]]:
    """Blur ``images`` [n,3,H,W] with one resolved parameter set per image."""
    kernel_sets = [make_kernels(p, streams) for p in params]
    linear = torch.tensor([p.linear_light for p in params], device=images.device)[:, None, None, None]
    light = bool(linear.any())
    source = torch.where(linear, images.clamp(0.0, 1.0) ** GAMMA, images) if light else images
    out = convolve(source, [k[0] for k in kernel_sets])
    varying = [i for i, k in enumerate(kernel_sets) if len(k) > 1]
    if varying:
        stronger = convolve(source[varying], [kernel_sets[i][1] for i in varying])
        out[varying] = torch.lerp(out[varying], stronger, _blend_weights(streams, len(varying), *images.shape[-2:]))
    if light:
        out = torch.where(linear, out.clamp(0.0, 1.0) ** (1.0 / GAMMA), out)
    records = []
    for p in params:
        severity = calibration.severity_from_blur_extent(p.extent_px)
        angle = round(p.angle_deg % 180.0, 2) if p.kind == "motion" else 0.0
        records.append(Blur(present=severity > 0, severity=severity, kind=p.kind,
                            extent_px=round(p.extent_px, 3), angle_deg=angle))
    return out, records


def _blend_weights(streams: Streams, count: int, height: int, width: int) -> torch.Tensor:
    """Smooth weights [count,1,H,W] in 0..1 averaging 0.5: where the stronger of two blurs applies."""
    scale = min(1.0, 64 / max(height, width))
    small = (max(2, round(height * scale)), max(2, round(width * scale)))
    weights = torch.sigmoid(2.5 * smooth_field(streams, count, *small, cells=2))
    weights = (weights - weights.mean(dim=(2, 3), keepdim=True) + 0.5).clamp(0.0, 1.0)
    return F.interpolate(weights, size=(height, width), mode="bilinear", align_corners=False)


def kernel_extent(kernel: torch.Tensor) -> float:
    """sqrt(12) times the standard deviation of a kernel along its principal axis, in pixels."""
    size = kernel.shape[-1]
    grid = torch.arange(size, dtype=torch.float64) - size // 2
    weights = kernel.double() / kernel.double().sum()
    ys, xs = torch.meshgrid(grid, grid, indexing="ij")
    mx, my = (weights * xs).sum(), (weights * ys).sum()
    cxx = (weights * (xs - mx) ** 2).sum()
    cyy = (weights * (ys - my) ** 2).sum()
    cxy = (weights * (xs - mx) * (ys - my)).sum()
    largest = 0.5 * (cxx + cyy) + math.sqrt(float(0.25 * (cxx - cyy) ** 2 + cxy ** 2))
    return math.sqrt(12.0 * float(largest))
