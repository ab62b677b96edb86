"""Denoising by sliding-window DCT shrinkage: hard thresholding, then an empirical Wiener pass.

Overlapping 8x8 blocks of the orthonormal opponent colour channels are transformed with a 2-D DCT;
coefficients below ``2.7`` noise stds are zeroed and the blocks are averaged back with weights that
favour sparse blocks (Yu & Sapiro, "DCT image denoising: a simple and effective image denoising
algorithm", IPOL 2011). A second pass uses that estimate as a pilot for Wiener shrinkage of the noisy
coefficients, the two-stage scheme of BM3D without the block matching. The noise std of every
coefficient of every block comes from a :class:`~.noise_model.NoiseModel`: the diagnosed sigma,
shaped by the noise spectrum and brightness dependence measured on the image, so correlated,
shot and gamma-lifted noise are handled as well as white noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...diagnosis import Noise, calibration
from ...filters import opponent_to_rgb, pad_symmetric, rgb_to_opponent
from . import noise_model
from .dct import BLOCK, basis_filters
from .noise_model import NoiseModel

HARD_THRESHOLD = 2.7
DEFAULT_STRIDE = 3
CHROMA_STRIDE = 4
MODEL_CROP = 1024


def _pad_for_blocks(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Symmetric padding so every pixel is covered by the same number of blocks and the grid ends at the edge."""
    h, w = x.shape[-2:]
    pad = BLOCK - 1
    extra_h = (-(h + 2 * pad - BLOCK)) % stride
    extra_w = (-(w + 2 * pad - BLOCK)) % stride
    return pad_symmetric(x, pad, pad + extra_w, pad, pad + extra_h), (pad, pad)


def _block_noise_std(padded: torch.Tensor, model: NoiseModel, stride: int, channels: slice) -> torch.Tensor:
    """Noise std ``[B*C,64,h',w']`` of every coefficient of every block of some channels of padded
    opponent images (block brightness from the luminance channel 0)."""
    brightness = F.avg_pool2d(padded[:, :1], BLOCK, stride=stride) / 3 ** 0.5                # [B,1,h',w']
    level = model.level_at(brightness) * model.sigma.view(-1, 1, 1, 1)
    std = level[:, None] * model.spectrum[:, channels, :, None, None]                       # [B,C,64,h',w']
    return std.reshape(-1, BLOCK * BLOCK, *brightness.shape[-2:])


def _channel_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over dim 1 of ``[N,64,h,w]`` as a matrix product, several times faster than ``sum`` on CPU."""
    ones = torch.ones(1, x.shape[1], device=x.device, dtype=x.dtype)
    return (ones @ x.flatten(2)).view(x.shape[0], 1, *x.shape[2:])


def _shrink_pass(flat: torch.Tensor, std: torch.Tensor, stride: int, size: tuple[int, int],
                 pilot: torch.Tensor | None) -> torch.Tensor:
    """One pass over padded single-channel images ``[N,1,Hp,Wp]``: hard threshold, or Wiener with a pilot."""
    filters = basis_filters(flat.device, flat.dtype)
    coefficients = F.conv2d(flat, filters, stride=stride)                # [N,64,h',w']: every block's DCT
    if pilot is None:
        # Hard thresholding, DC always kept; sparse blocks are more trusted.
        keep = coefficients.abs() > HARD_THRESHOLD * std
        keep[:, :1] = True
        shrunk = coefficients.mul_(keep)
        weights = 1.0 / _channel_sum(keep.to(flat.dtype))
    else:
        energy = F.conv2d(pilot, filters, stride=stride).square_()
        gain = energy.div_(energy + std.square())                       # Wiener gain per coefficient
        gain[:, :1] = 1.0
        shrunk = coefficients.mul_(gain)
        weights = 1.0 / _channel_sum(gain.square_()).clamp_min(1e-6)
    # Inverse DCT of every block (the basis is orthonormal) and overlap-add back into the image.
    inverse = filters.view(BLOCK * BLOCK, BLOCK * BLOCK).T
    numerator = F.fold(inverse @ shrunk.mul_(weights).flatten(2), size, BLOCK, stride=stride)
    denominator = F.conv_transpose2d(weights, torch.ones_like(filters[:1]), stride=stride)
    return numerator / denominator


def _denoise_group(opponent: torch.Tensor, model: NoiseModel, channels: slice, stride: int,
                   wiener: bool) -> torch.Tensor:
    """Denoise some channels of opponent images with one block stride (brightness from channel 0)."""
    batch, _, h, w = opponent.shape
    padded, (top, left) = _pad_for_blocks(opponent, stride)
    size = (padded.shape[-2], padded.shape[-1])
    std = _block_noise_std(padded, model, stride, channels)
    flat = padded[:, channels].reshape(-1, 1, *size)
    estimate = _shrink_pass(flat, std, stride, size, None)
    if wiener:
        estimate = _shrink_pass(flat, std, stride, size, estimate)
    return estimate[:, :, top:top + h, left:left + w].reshape(batch, -1, h, w)


def dct_denoise(opponent: torch.Tensor, model: NoiseModel, *, stride: int = DEFAULT_STRIDE,
                chroma_stride: int | None = CHROMA_STRIDE, wiener: bool = True) -> torch.Tensor:
    """Denoise opponent-colour images ``[B,C,H,W]`` (luminance first) whose noise ``model`` describes.

    ``stride`` is the block step (1 is the full sliding window: best and 9x slower than 3);
    ``chroma_stride`` (if not None) is a coarser step for the smoother colour channels 1..C-1;
    ``wiener`` adds the second, pilot-guided pass.
    """
    channels = opponent.shape[1]
    if chroma_stride is None or chroma_stride == stride or channels == 1:
        return _denoise_group(opponent, model, slice(0, channels), stride, wiener)
    luminance = _denoise_group(opponent, model, slice(0, 1), stride, wiener)
    chroma = _denoise_group(opponent, model, slice(1, channels), chroma_stride, wiener)
    return torch.cat([luminance, chroma], dim=1)


def sigma_of(noise: Noise) -> float:
    """The record's ``sigma_255``, or the one its severity stands for when a reasoner left it at 0."""
    return noise.sigma_255 if noise.sigma_255 > 0 else calibration.noise_sigma_from_severity(noise.severity)


def estimate_model(images: torch.Tensor, noise: Noise) -> NoiseModel:
    """The noise model of RGB ``[B,3,H,W]`` for a Noise record, measured on a centre crop of at most
    1024x1024 pixels (enough blocks for every statistic; the same model then serves every tile)."""
    height, width = images.shape[-2:]
    top, left = max(0, (height - MODEL_CROP) // 2), max(0, (width - MODEL_CROP) // 2)
    crop = images[:, :, top:top + MODEL_CROP, left:left + MODEL_CROP]
    sigmas = torch.full((images.shape[0],), sigma_of(noise) / 255.0, device=images.device, dtype=images.dtype)
    return noise_model.estimate(rgb_to_opponent(crop), sigmas)


def denoise(images: torch.Tensor, noise: Noise, *, model: NoiseModel | None = None) -> torch.Tensor:
    """Remove the noise a :class:`~rnr.diagnosis.Noise` record describes from RGB ``[B,3,H,W]`` in 0..1.

    ``sigma_255 / 255`` is the noise std at mid-grey; its spectrum and brightness dependence are
    measured on the images (:func:`estimate_model`) unless a ``model`` is given, as it is for the
    tiles of a large image.
    """
    if sigma_of(noise) <= 0:
        return images
    if model is None:
        model = estimate_model(images, noise)
    return opponent_to_rgb(dct_denoise(rgb_to_opponent(images), model)).clamp(0.0, 1.0)
