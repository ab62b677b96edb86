"""Seeded random draws: one CPU generator for scalar parameters, one on the image device for fields.

Each degradation type gets its own streams derived from the integer seed, so that adding rain to a
request does not change the noise that the same seed draws. Scalar parameters come from a CPU
generator (the same on every device); large random fields come from a generator on the images' device
(reproducible per device, and fast on GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_STREAM_IDS = {"mix": 1, "haze": 2, "rain": 3, "noise": 4, "blur": 5}
_MASK_63 = (1 << 63) - 1


@dataclass
class Streams:
    """The random sources of one degradation type: ``params`` on the CPU, ``fields`` on ``device``."""

    params: torch.Generator
    fields: torch.Generator
    device: torch.device

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        """A float drawn uniformly from [low, high)."""
        return low + (high - low) * float(torch.rand((), generator=self.params))

    def log_uniform(self, low: float, high: float) -> float:
        """A float drawn log-uniformly from [low, high) (both > 0)."""
        log_low, log_high = torch.log(torch.tensor(low)), torch.log(torch.tensor(high))
        return float(torch.exp(log_low + (log_high - log_low) * torch.rand((), generator=self.params)))

    def normal(self, mean: float = 0.0, std: float = 1.0) -> float:
        return mean + std * float(torch.randn((), generator=self.params))

    def integer(self, low: int, high: int) -> int:
        """An integer drawn uniformly from [low, high] (inclusive)."""
        return int(torch.randint(low, high + 1, (), generator=self.params))

    def choice(self, options: tuple, weights: tuple[float, ...] | None = None):
        """One of ``options``, with optional relative weights."""
        if weights is None:
            weights = (1.0,) * len(options)
        index = int(torch.multinomial(torch.tensor(weights, dtype=torch.float64), 1, generator=self.params))
        return options[index]

    def rand(self, *shape: int) -> torch.Tensor:
        """A uniform 0..1 float32 field on the device."""
        return torch.rand(shape, generator=self.fields, device=self.device)

    def randn(self, *shape: int) -> torch.Tensor:
        """A standard normal float32 field on the device."""
        return torch.randn(shape, generator=self.fields, device=self.device)


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for one named stream of an integer seed."""
    mixed = (int(seed) * 0x9E3779B97F4A7C15 + _STREAM_IDS[stream] * 0xBF58476D1CE4E5B9) & _MASK_63
    mixed ^= mixed >> 31
    return (mixed * 0x94D049BB133111EB) & _MASK_63


def make_streams(seed: int, stream: str, device: torch.device) -> Streams:
    """The seeded generators of one stream for images on ``device``."""
    base = derive_seed(seed, stream)
    params = torch.Generator().manual_seed(base)
    fields = torch.Generator(device=device).manual_seed(base ^ 0x5BD1E995)
    return Streams(params=params, fields=fields, device=device)


def smooth_field(streams: Streams, count: int, height: int, width: int, cells: int) -> torch.Tensor:
    """Low-frequency random fields [count,1,H,W] in about -1..1: a ``cells``-wide random grid, bicubic.

    A second octave at twice the frequency and half the amplitude keeps the fields from looking like
    plain gradients.
    """
    shorter = min(height, width)
    out = torch.zeros(count, 1, height, width, device=streams.device)
    amplitude = 1.0
    for octave in range(2):
        rows = max(2, round(cells * (2 ** octave) * height / shorter))
        cols = max(2, round(cells * (2 ** octave) * width / shorter))
        grid = streams.randn(count, 1, rows + 1, cols + 1)
        out += amplitude * F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=True)
        amplitude *= 0.5
    return out / 1.25
