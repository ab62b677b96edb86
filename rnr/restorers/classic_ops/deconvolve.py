"""Non-blind deconvolution with the kernel a :class:`~rnr.diagnosis.Blur` record describes.

The kernel is built from the record (a straight motion line, a defocus disk or a gaussian, on the
conventions of :mod:`rnr.diagnosis.calibration`). The sharp image is the minimiser of
``lam/2 * |k * x - y|^2 + |grad x|_1`` (total variation), found by half-quadratic splitting in the
Fourier domain (Krishnan & Fergus 2009): a few rounds of shrinking the gradients and solving for the
image in closed form. ``lam`` follows the noise level measured on the image itself, so noisy inputs get
more regularisation. The image is mirrored outwards and the outer margin tapered before the FFT, so
that the periodic boundary of the FFT causes no ringing inside the picture.
"""

from __future__ import annotations

import math

import torch

from ...diagnosis import Blur, calibration
from ...fft import fast_length
from ...filters import pad_symmetric, rgb_to_luma

MAX_KERNEL_PX = 101
# Residual error (0..1 units) always allowed for, because the record's kernel is only a model of the
# real one: a motion record gives extent and angle but not the shape of a shaky path, so motion is
# regularised most. Tuned on rnr.degrade blurs (linear and shake paths, sRGB and linear light).
MODEL_ERROR_SIGMA = {"motion": 0.08, "defocus": 0.04, "gaussian": 0.03}
FIDELITY = 2.0
# Half-quadratic penalty weights: six rounds growing by 2*sqrt(2) gave the PSNR of eight doubling ones.
BETAS = tuple(2.0 ** (1.5 * k) for k in range(6))


def extent_of(blur: Blur) -> float:
    """The record's ``extent_px``, or the one its severity stands for when a reasoner left it at 0."""
    return blur.extent_px if blur.extent_px > 0 else calibration.blur_extent_from_severity(blur.severity)


def blur_kernel(blur: Blur, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The normalised ``[K,K]`` kernel (K odd, centred, rows going down) of a blur record.

    motion: a line of ``extent_px`` at ``angle_deg`` counter-clockwise from horizontal as seen on
    screen; defocus: a disk of diameter ``extent_px``; gaussian: sigma = ``extent_px / 4``.
    """
    extent = min(extent_of(blur), MAX_KERNEL_PX - 2.0)
    supersample = 8
    if blur.kind == "gaussian":
        sigma = extent / 4.0
        radius = max(1, math.ceil(3.0 * sigma))
        taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
        line = torch.exp(-0.5 * (taps / max(sigma, 1e-3)) ** 2)
        kernel = line[:, None] * line[None, :]
    elif blur.kind == "defocus":
        radius_px = extent / 2.0
        radius = max(1, math.ceil(radius_px + 0.5))
        sub = (torch.arange(supersample, dtype=torch.float64) + 0.5) / supersample - 0.5
        coords = (torch.arange(-radius, radius + 1, dtype=torch.float64)[:, None] + sub[None, :]).reshape(-1)
        inside = (coords[:, None] ** 2 + coords[None, :] ** 2 <= max(radius_px, 0.5) ** 2).double()
        size = 2 * radius + 1
        kernel = inside.view(size, supersample, size, supersample).mean(dim=(1, 3))
    else:
        radius = max(1, math.ceil(extent / 2.0 + 1.0))
        size = 2 * radius + 1
        angle = math.radians(blur.angle_deg)
        samples = max(2, math.ceil(extent * 4) + 1)
        s = torch.linspace(-0.5, 0.5, samples, dtype=torch.float64) * extent
        xs, ys = s * math.cos(angle) + radius, -s * math.sin(angle) + radius
        x0, y0 = xs.floor(), ys.floor()
        fx, fy = xs - x0, ys - y0
        kernel = torch.zeros(size * size, dtype=torch.float64)
        corners = ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy))
        for dx, dy, weight in corners:
            kernel.index_add_(0, ((y0 + dy) * size + x0 + dx).long(), weight)
        kernel = kernel.view(size, size)
    return (kernel / kernel.sum()).to(device=device, dtype=dtype)


def estimate_noise_sigma(images: torch.Tensor) -> torch.Tensor:
    """Robust noise std ``[B]`` (0..1 units) from the median diagonal Haar detail of the luma (Donoho)."""
    luma = rgb_to_luma(images)
    h, w = luma.shape[-2:]
    luma = luma[..., : h - h % 2, : w - w % 2]
    if luma.shape[-1] < 2 or luma.shape[-2] < 2:
        return torch.zeros(images.shape[0], device=images.device, dtype=images.dtype)
    a, b = luma[..., 0::2, 0::2], luma[..., 0::2, 1::2]
    c, d = luma[..., 1::2, 0::2], luma[..., 1::2, 1::2]
    detail = (a - b - c + d) / 2.0
    return detail.flatten(1).abs().median(dim=1).values / 0.6745


def _transfer(kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Optical transfer function ``[H, W//2+1]`` of a centred kernel on an ``H x W`` periodic grid."""
    frame = torch.zeros(height, width, dtype=kernel.dtype, device=kernel.device)
    size_h, size_w = kernel.shape
    frame[:size_h, :size_w] = kernel
    frame = torch.roll(frame, shifts=(-(size_h // 2), -(size_w // 2)), dims=(0, 1))
    return torch.fft.rfft2(frame)


def _mirror_and_taper(images: torch.Tensor, margin: int, taper_sigma: float) -> tuple[torch.Tensor, tuple[int, int]]:
    """Mirror ``margin`` pixels outwards, grow to a fast FFT size and fade the outer frame into a heavily
    blurred copy that wraps smoothly around the periodic boundary."""
    h, w = images.shape[-2:]
    full_h, full_w = fast_length(h + 2 * margin), fast_length(w + 2 * margin)
    top, left = (full_h - h) // 2, (full_w - w) // 2
    padded = pad_symmetric(images, left, full_w - w - left, top, full_h - h - top)
    smooth = torch.fft.irfft2(torch.fft.rfft2(padded) * _transfer(
        _gaussian_2d(taper_sigma, images.device, images.dtype, full_h, full_w), full_h, full_w), s=(full_h, full_w))
    rows = torch.arange(full_h, device=images.device, dtype=images.dtype)
    cols = torch.arange(full_w, device=images.device, dtype=images.dtype)
    dist_y = torch.minimum(rows - top + margin, top + h - 1 + margin - rows)
    dist_x = torch.minimum(cols - left + margin, left + w - 1 + margin - cols)
    ramp_y = (dist_y / max(margin, 1)).clamp(0.0, 1.0)
    ramp_x = (dist_x / max(margin, 1)).clamp(0.0, 1.0)
    alpha = (torch.sin(0.5 * math.pi * ramp_y)[:, None] * torch.sin(0.5 * math.pi * ramp_x)[None, :]) ** 2
    return alpha * padded + (1.0 - alpha) * smooth, (top, left)


def _gaussian_2d(sigma: float, device: torch.device, dtype: torch.dtype, max_h: int, max_w: int) -> torch.Tensor:
    radius = min(math.ceil(3 * sigma), (min(max_h, max_w) - 1) // 2)
    taps = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    line = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = line[:, None] * line[None, :]
    return kernel / kernel.sum()


def tv_deconvolve(images: torch.Tensor, kernel: torch.Tensor, noise_sigma: torch.Tensor | float,
                  model_error_sigma: float = 0.04) -> torch.Tensor:
    """Deconvolve ``[B,C,H,W]`` by a ``[K,K]`` kernel with a TV prior.

    ``noise_sigma`` (``[B]`` or a float) and ``model_error_sigma`` are in 0..1 units; their combined
    variance sets the weight of the data term against the prior.
    """
    batch = images.shape[0]
    ksize = kernel.shape[-1]
    margin = max(16, 2 * ksize)
    padded, (top, left) = _mirror_and_taper(images, margin, max(2.0, ksize / 2.0))
    full_h, full_w = padded.shape[-2:]
    otf = _transfer(kernel.to(images), full_h, full_w)
    otf_dx = _transfer(torch.tensor([[0.0, -1.0, 1.0]], device=images.device, dtype=images.dtype), full_h, full_w)
    otf_dy = _transfer(torch.tensor([[0.0], [-1.0], [1.0]], device=images.device, dtype=images.dtype), full_h, full_w)
    sigma = torch.as_tensor(noise_sigma, dtype=images.dtype, device=images.device).reshape(-1).expand(batch)
    lam = (FIDELITY / (sigma.square() + model_error_sigma ** 2)).view(-1, 1, 1, 1)
    spectrum = torch.fft.rfft2(padded)
    data_term = lam * otf.conj() * spectrum
    kernel_power = lam * otf.abs().square()
    gradient_power = otf_dx.abs().square() + otf_dy.abs().square()
    estimate = padded
    for beta in BETAS:
        # Shrink the (periodic) gradients towards zero, then solve the quadratic problem exactly.
        grad_x = torch.roll(estimate, -1, dims=-1) - estimate
        grad_y = torch.roll(estimate, -1, dims=-2) - estimate
        w_x = torch.sign(grad_x) * (grad_x.abs() - 1.0 / beta).clamp_min(0.0)
        w_y = torch.sign(grad_y) * (grad_y.abs() - 1.0 / beta).clamp_min(0.0)
        # Adjoint of the forward differences.
        divergence = (torch.roll(w_x, 1, dims=-1) - w_x) + (torch.roll(w_y, 1, dims=-2) - w_y)
        numerator = data_term + beta * torch.fft.rfft2(divergence)
        estimate = torch.fft.irfft2(numerator / (kernel_power + beta * gradient_power), s=(full_h, full_w))
    h, w = images.shape[-2:]
    return estimate[..., top:top + h, left:left + w]


def deconvolve(images: torch.Tensor, blur: Blur) -> torch.Tensor:
    """Remove the blur a :class:`~rnr.diagnosis.Blur` record describes from RGB ``[B,3,H,W]`` in 0..1."""
    if extent_of(blur) < 0.5:
        return images
    kernel = blur_kernel(blur, device=images.device, dtype=images.dtype)
    restored = tv_deconvolve(images, kernel, estimate_noise_sigma(images), MODEL_ERROR_SIGMA[blur.kind])
    return restored.clamp(0.0, 1.0)
