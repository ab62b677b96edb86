"""What the noise looks like in a given image: its spectrum across 8x8 DCT frequencies and its level
across intensities, measured on the flattest blocks and scaled to the diagnosed sigma.

Real noise is rarely white and constant: demosaicing and in-camera processing correlate it between
neighbouring pixels and between colour channels, and shot noise or a gamma curve makes it depend on
brightness. A Noise record gives one number, the std at mid-grey. The rest is measured on the image:
in each brightness band, the blocks with the least AC energy are nearly pure noise, so their energy
per frequency and channel gives the noise spectrum and its level per band gives the noise level
function. The spectrum is fitted by a two-parameter model (gaussian spatial correlation of ``s``
pixels, channel correlation ``rho``) so texture leaking into the flat blocks cannot distort it much.
Everything is finally scaled so that the std at mid-grey is the diagnosed sigma: editing the
diagnosis still changes the result monotonically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .dct import BLOCK, basis_filters, dct_matrix

BANDS = 8
FLAT_QUANTILE = 0.2
MIN_BLOCKS_PER_BAND = 12
SPATIAL_SIGMAS = tuple(0.1 * i for i in range(21))
LEVEL_RANGE = (0.25, 4.0)
# Choosing the flattest fifth of the blocks underestimates the energy of pure noise by this factor.
FLAT_SELECTION_BIAS = 0.86


@dataclass(frozen=True)
class NoiseModel:
    """Noise std per block: ``sigma * level(mean) * spectrum[c, k]`` (0..1 units).

    ``spectrum`` ``[B,C,64]`` has a mean square of 1 over channels and frequencies; ``levels``
    ``[B,BANDS]`` is the relative std per brightness band (1 at mid-grey); ``sigma`` ``[B]``.
    """

    sigma: torch.Tensor
    spectrum: torch.Tensor
    levels: torch.Tensor
    spatial_sigma_px: torch.Tensor
    channel_correlation: torch.Tensor

    def level_at(self, brightness: torch.Tensor) -> torch.Tensor:
        """Relative noise std for block brightness ``[B,1,h,w]`` in 0..1 (linear between band centres)."""
        position = (brightness.clamp(0.0, 1.0) * BANDS - 0.5).clamp(0.0, BANDS - 1.0)
        low = position.floor().long().clamp(max=BANDS - 2) if BANDS > 1 else position.long()
        frac = position - low
        batch = brightness.shape[0]
        table = self.levels.view(batch, BANDS, 1, 1).expand(-1, -1, *brightness.shape[-2:])
        low_value = table.gather(1, low)
        high_value = table.gather(1, (low + 1).clamp(max=BANDS - 1))
        return low_value + frac * (high_value - low_value)


def white(sigma: torch.Tensor, channels: int) -> NoiseModel:
    """White noise of constant std ``sigma`` ``[B]``: the model when nothing can be measured."""
    batch = sigma.shape[0]
    ones = torch.ones(batch, channels, BLOCK * BLOCK, device=sigma.device, dtype=sigma.dtype)
    zeros = torch.zeros(batch, device=sigma.device, dtype=sigma.dtype)
    return NoiseModel(sigma, ones, torch.ones(batch, BANDS, device=sigma.device, dtype=sigma.dtype), zeros, zeros)


def _frequency_variances(spatial_sigma_px: float) -> torch.Tensor:
    """Variance ``[8]`` of each 1-D DCT frequency for unit-variance noise blurred by a gaussian of that sigma."""
    offsets = torch.arange(BLOCK, dtype=torch.float64)
    lag = offsets[:, None] - offsets[None, :]
    if spatial_sigma_px <= 1e-6:
        correlation = (lag == 0).double()
    else:
        # Autocorrelation of gaussian-blurred white noise, sampled: a gaussian of std sqrt(2) * s.
        correlation = torch.exp(-lag ** 2 / (4.0 * spatial_sigma_px ** 2))
    basis = dct_matrix(BLOCK, dtype=torch.float64)
    return torch.einsum("ka,ab,kb->k", basis, correlation, basis)


_MODEL_SHAPES = torch.stack([torch.outer(v, v).reshape(-1) for v in map(_frequency_variances, SPATIAL_SIGMAS)])
"""Variance of each of the 64 DCT coefficients for unit-variance noise, per candidate spatial sigma ``[S,64]``."""
_HIGH_FREQUENCIES = (torch.arange(BLOCK)[:, None] + torch.arange(BLOCK)[None, :]).reshape(-1) >= BLOCK
"""The 28 coefficients with ky + kx >= 8: mostly noise even in textured blocks."""


def _opponent_channel_variances(rho: torch.Tensor) -> torch.Tensor:
    """Relative variances ``[B,3]`` of the opponent channels (luminance, red-green, blue-yellow) for RGB
    noise whose channels share a fraction ``rho`` of their variance."""
    return torch.stack([1.0 + 2.0 * rho, 1.0 - rho, 1.0 - rho], dim=1)


def estimate(opponent: torch.Tensor, sigma: torch.Tensor) -> NoiseModel:
    """Measure the noise model of opponent-colour images ``[B,3,H,W]`` scaled to std ``sigma`` ``[B]`` at mid-grey."""
    batch, channels, height, width = opponent.shape
    if height < 2 * BLOCK or width < 2 * BLOCK or channels != 3:
        return white(sigma, channels)
    filters = basis_filters(opponent.device, opponent.dtype)
    coefficients = F.conv2d(opponent.reshape(batch * channels, 1, height, width), filters, stride=BLOCK)
    coefficients = coefficients.view(batch, channels, BLOCK * BLOCK, -1)                    # [B,C,64,L]
    brightness = coefficients[:, 0, 0] / (BLOCK * math.sqrt(3.0))                             # [B,L] grey mean
    energy = coefficients[:, :, 1:].square().sum(dim=(1, 2))                                  # [B,L] AC energy
    band = (brightness.clamp(0.0, 1.0) * BANDS).long().clamp(max=BANDS - 1)

    levels = torch.full((batch, BANDS), float("nan"), device=opponent.device, dtype=opponent.dtype)
    spectra = torch.zeros(batch, channels, BLOCK * BLOCK, device=opponent.device, dtype=opponent.dtype)
    counts = torch.zeros(batch, device=opponent.device, dtype=opponent.dtype)
    for b in range(batch):
        for k in range(BANDS):
            members = (band[b] == k).nonzero().squeeze(1)
            if members.numel() < MIN_BLOCKS_PER_BAND:
                continue
            member_energy = energy[b, members]
            cut = torch.quantile(member_energy, FLAT_QUANTILE)
            flat = members[member_energy <= cut]
            variance = energy[b, flat].mean() / (channels * (BLOCK * BLOCK - 1))
            levels[b, k] = variance.clamp_min(1e-12).sqrt()
            spectra[b] += coefficients[b][:, :, flat].square().sum(dim=2) / variance.clamp_min(1e-12)
            counts[b] += flat.numel()
    if not bool(torch.isfinite(levels).any(dim=1).all()):
        return white(sigma, channels)
    spectra = spectra / counts.clamp_min(1.0).view(-1, 1, 1)
    absolute_levels = _fill(levels)
    levels = _normalise(absolute_levels)
    # Flat-block noise energy at mid-grey relative to the diagnosed variance, per channel and frequency.
    mid_variance = _at_mid_grey(absolute_levels).square() / FLAT_SELECTION_BIAS
    relative = spectra * (mid_variance / sigma.square().clamp_min(1e-12))[:, None, None]      # [B,C,64]
    high = _HIGH_FREQUENCIES.to(relative.device)
    model_high = _MODEL_SHAPES.to(relative)[:, high].mean(dim=1)                              # [S]
    # Correlated noise of the diagnosed variance puts less energy into the high frequencies: their level
    # gives the spatial correlation. Texture can only add energy there, which pulls the fit towards
    # white noise, the safe side.
    measured_high = relative[:, :, high].mean(dim=(1, 2)).clamp_min(1e-6)                      # [B]
    misfit = (measured_high.log()[:, None] - model_high.log()[None]).abs()
    best = misfit.argmin(dim=1)
    spatial = torch.tensor(SPATIAL_SIGMAS, device=relative.device, dtype=relative.dtype)[best]
    frequency_shape = _MODEL_SHAPES.to(relative)[best]                                         # [B,64]
    # Noise shared by the RGB channels leaves less in the chroma channels (1 - rho of the variance);
    # chroma carries little texture, so all its AC coefficients can be used.
    chroma = relative[:, 1:, 1:].mean(dim=(1, 2)) / frequency_shape[:, 1:].mean(dim=1)
    rho = (1.0 - chroma).clamp(0.0, 0.95)
    spectrum = _opponent_channel_variances(rho)[:, :, None] * frequency_shape[:, None, :]
    spectrum = (spectrum / spectrum.mean(dim=(1, 2), keepdim=True)).sqrt()
    return NoiseModel(sigma, spectrum, levels, spatial, rho)


def _fill(levels: torch.Tensor) -> torch.Tensor:
    """Bands without measurements take their nearest measured neighbour's value; then a light smoothing."""
    filled = levels.clone()
    for b in range(levels.shape[0]):
        known = torch.isfinite(levels[b]).nonzero().squeeze(1)
        for k in range(levels.shape[1]):
            if not torch.isfinite(levels[b, k]):
                filled[b, k] = levels[b, known[(known - k).abs().argmin()]]
    return F.avg_pool1d(F.pad(filled[:, None], (1, 1), mode="replicate"), 3, stride=1)[:, 0]


def _at_mid_grey(levels: torch.Tensor) -> torch.Tensor:
    return 0.5 * (levels[:, BANDS // 2 - 1] + levels[:, BANDS // 2])


def _normalise(levels: torch.Tensor) -> torch.Tensor:
    """Levels relative to mid-grey, clamped to a plausible range."""
    return (levels / _at_mid_grey(levels).clamp_min(1e-9)[:, None]).clamp(*LEVEL_RANGE)
