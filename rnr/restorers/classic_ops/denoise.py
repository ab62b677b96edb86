"""Denoising by sliding-window DCT shrinkage: hard thresholding, then an empirical Wiener pass.

Overlapping 8x8 blocks of the orthonormal opponent colour channels are transformed with a 2-D DCT;
coefficients below ``2.7 * sigma`` are zeroed and the blocks are averaged back with weights that favour
sparse blocks (Yu & Sapiro, "DCT image denoising: a simple and effective image denoising algorithm",
IPOL 2011). A second pass uses that estimate as a pilot for Wiener shrinkage of the noisy coefficients,
the same two-stage scheme as BM3D without the block matching. Poisson noise goes through the
generalised Anscombe transform so that its variance becomes constant first.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...diagnosis import Noise
from ...filters import opponent_to_rgb, pad_symmetric, rgb_to_opponent

BLOCK = 8
HARD_THRESHOLD = 2.7


def dct_matrix(size: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``[size, size]`` (rows are frequencies)."""
    n = torch.arange(size, dtype=torch.float64)
    k = n[:, None]
    matrix = torch.cos(math.pi * (2 * n[None, :] + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    matrix[0] /= math.sqrt(2.0)
    return matrix.to(device=device, dtype=dtype)


def _basis_filters(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The 64 2-D DCT basis blocks as convolution filters ``[64,1,8,8]`` (DC first)."""
    basis = dct_matrix(BLOCK, device=device, dtype=dtype)
    return torch.einsum("ka,lb->klab", basis, basis).reshape(BLOCK * BLOCK, 1, BLOCK, BLOCK)


def _pad_for_blocks(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Symmetric padding so every pixel is covered by the same number of blocks and the grid ends at the edge."""
    h, w = x.shape[-2:]
    pad = BLOCK - 1
    extra_h = (-(h + 2 * pad - BLOCK)) % stride
    extra_w = (-(w + 2 * pad - BLOCK)) % stride
    return pad_symmetric(x, pad, pad + extra_w, pad, pad + extra_h), (pad, pad)


def _shrink_pass(x: torch.Tensor, sigma: torch.Tensor, stride: int, pilot: torch.Tensor | None) -> torch.Tensor:
    """One pass over single-channel images ``[N,1,H,W]``: hard threshold (no pilot) or Wiener (with pilot)."""
    filters = _basis_filters(x.device, x.dtype)
    padded, (top, left) = _pad_for_blocks(x, stride)
    coefficients = F.conv2d(padded, filters, stride=stride)             # [N,64,h',w']: every block's DCT
    if pilot is None:
        # Hard thresholding at 2.7 sigma, DC always kept; sparse blocks are more trusted.
        shrunk = torch.where(coefficients.abs() > HARD_THRESHOLD * sigma, coefficients, 0.0)
        shrunk[:, :1] = coefficients[:, :1]
        weights = 1.0 / torch.count_nonzero(shrunk, dim=1).clamp_min(1).unsqueeze(1).to(x.dtype)
    else:
        pilot_padded, _ = _pad_for_blocks(pilot, stride)
        energy = F.conv2d(pilot_padded, filters, stride=stride).square_()
        gain = energy.div_(energy + sigma.square())                     # Wiener gain per coefficient
        gain[:, :1] = 1.0
        weights = 1.0 / torch.linalg.vector_norm(gain, dim=1, keepdim=True).square_().clamp_min(1e-6)
        shrunk = coefficients.mul_(gain)
    del coefficients
    # The transposed convolution with the same orthonormal basis inverts every block and adds the
    # overlapping blocks back into the image.
    size = (padded.shape[-2], padded.shape[-1])
    inverse = filters.view(BLOCK * BLOCK, BLOCK * BLOCK).T
    numerator = F.fold(inverse @ shrunk.mul_(weights).flatten(2), size, BLOCK, stride=stride)
    denominator = F.conv_transpose2d(weights, torch.ones_like(filters[:1]), stride=stride)
    out = numerator / denominator
    return out[:, :, top:top + x.shape[-2], left:left + x.shape[-1]]


def dct_denoise(x: torch.Tensor, sigma: torch.Tensor | float, *, stride: int = 3, wiener: bool = True) -> torch.Tensor:
    """Remove white gaussian noise of std ``sigma`` (same units as ``x``) from ``[B,C,H,W]``, channel by channel.

    ``sigma`` is a float or a ``[B]`` tensor. ``stride`` is the block step (1 is the full sliding
    window: best and 9x slower than 3); ``wiener`` adds the second, pilot-guided pass.
    """
    batch, channels, h, w = x.shape
    sigma_b = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1).expand(batch)
    sigma_n = sigma_b.repeat_interleave(channels).view(-1, 1, 1, 1)
    flat = x.reshape(batch * channels, 1, h, w)
    estimate = _shrink_pass(flat, sigma_n, stride, None)
    if wiener:
        estimate = _shrink_pass(flat, sigma_n, stride, estimate)
    return estimate.reshape(batch, channels, h, w)


def anscombe(x: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Generalised Anscombe transform of poisson data ``x = scale * Poisson(x_true / scale)``: std becomes 1."""
    return 2.0 * torch.sqrt((x / scale).clamp_min(0.0) + 0.375)


def inverse_anscombe(z: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Closed-form approximation of the exact unbiased inverse (Makitalo & Foi 2011)."""
    z = z.clamp_min(1.0)
    s = math.sqrt(1.5)
    value = 0.25 * z ** 2 + 0.25 * s / z - 1.375 / z ** 2 + 0.625 * s / z ** 3 - 0.125
    return value.clamp_min(0.0) * scale


def denoise(images: torch.Tensor, noise: Noise, *, stride: int = 2) -> torch.Tensor:
    """Remove the noise a :class:`~rnr.diagnosis.Noise` record describes from RGB ``[B,3,H,W]`` in 0..1.

    Gaussian noise of std ``sigma_255 / 255`` is shrunk in opponent colour space; poisson noise (whose
    std is ``sigma_255 / 255`` at mid-grey) is stabilised with the Anscombe transform first.
    """
    sigma = noise.sigma_255 / 255.0
    if sigma <= 0:
        return images
    if noise.kind == "poisson":
        # Variance = scale * x, with std sigma at x = 0.5.
        scale = sigma * sigma / 0.5
        stabilised = anscombe(images, scale)
        restored = opponent_to_rgb(dct_denoise(rgb_to_opponent(stabilised), 1.0, stride=stride))
        return inverse_anscombe(restored, scale).clamp(0.0, 1.0)
    restored = opponent_to_rgb(dct_denoise(rgb_to_opponent(images), sigma, stride=stride))
    return restored.clamp(0.0, 1.0)
