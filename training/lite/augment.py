"""Train-time augmentations beyond rnr.degrade, so the lite models meet other people's images.

* on clean images (before degrading): flips and quarter turns, colour jitter (exposure, gamma,
  contrast, saturation, white balance) and rescaling;
* on degraded images (after degrading): JPEG-like block-DCT compression and a down-up resize, as
  photos posted online and benchmark sets built by others have been through.

All functions take float [B,3,H,W] in 0..1 on any device and a ``torch.Generator`` on the CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LUMA_TABLE = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)
_CHROMA_TABLE = torch.full((8, 8), 99.0)
_CHROMA_TABLE[:4, :4] = torch.tensor([[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]],
                                     dtype=torch.float32)


def _dct_matrix() -> torch.Tensor:
    n = 8
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.float()


_DCT = _dct_matrix()


def _quant_table(table: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """IJG scaling of a base table for qualities [B] (1..100) -> [B,8,8]."""
    q = quality.clamp(1, 100).float()
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    return ((table[None] * scale[:, None, None] + 50.0) / 100.0).floor().clamp(1.0, 255.0)


def jpeg_like(images: torch.Tensor, quality: torch.Tensor, chroma_subsample: bool = True) -> torch.Tensor:
    """Baseline-JPEG-like compression: YCbCr, optional 4:2:0 chroma, 8x8 DCT quantised with the IJG
    tables at ``quality`` [B] (1..100), rounded to 8 bits. Not bit-exact JPEG, but the same artefacts."""
    b, _, h, w = images.shape
    device = images.device
    ph, pw = (-h) % 16, (-w) % 16
    x = F.pad(images, (0, pw, 0, ph), mode="replicate") * 255.0
    r, g, bl = x.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl
    chroma = torch.stack([cb, cr], 1)
    if chroma_subsample:
        chroma = F.avg_pool2d(chroma, 2)
    dct = _DCT.to(device)

    def code(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = plane.shape
        blocks = plane.reshape(n, c, hh // 8, 8, ww // 8, 8).permute(0, 1, 2, 4, 3, 5)
        coeffs = dct @ blocks @ dct.T
        t = table.to(device)[:, None, None, None]
        coeffs = torch.round(coeffs / t) * t
        blocks = dct.T @ coeffs @ dct
        return blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, hh, ww)

    y = code((y - 128.0)[:, None], _quant_table(_LUMA_TABLE, quality)) + 128.0
    chroma = code(chroma, _quant_table(_CHROMA_TABLE, quality))
    if chroma_subsample:
        chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    y = y[:, 0]
    cb, cr = chroma.unbind(1)
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return (torch.round(rgb.clamp(0.0, 255.0)) / 255.0)[..., :h, :w]


def flip_rotate(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random one of the 8 flips/quarter turns, the same for the whole batch."""
    k = int(torch.randint(0, 8, (1,), generator=generator))
    if k & 4:
        images = images.flip(-1)
    return torch.rot90(images, k & 3, dims=(-2, -1))


def colour_jitter(images: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Per image: exposure gain, gamma, contrast about the mean, saturation and white-balance gains.

    Contrast is only ever raised (x1.0..1.2) or lowered a little (down to x0.92): lowering it about the
    mean lifts the blacks and flattens the image the way haze does (x0.75 looks like haze of severity
    ~28 with the image mean as airlight), and a clean image must not look hazy under a "no haze" label.
    """
    b = images.shape[0]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        u = torch.rand((b, *shape), generator=generator)
        centre = 0.5 * (low + high)
        return (centre + (u - 0.5) * (high - low) * strength).to(images.device)

    x = images.clamp(0.0, 1.0) ** uniform(0.75, 1.35)[:, None, None, None]
    x = x * uniform(0.75, 1.2)[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * uniform(0.92, 1.2)[:, None, None, None]
    grey = x.mean(dim=1, keepdim=True)
    x = grey + (x - grey) * uniform(0.6, 1.3)[:, None, None, None]
    x = x * uniform(0.92, 1.08, 3)[:, :, None, None]
    return x.clamp(0.0, 1.0)


def down_up(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale by ``factor`` (< 1, antialiased) and upscale back (bicubic): lost fine detail."""
    h, w = images.shape[-2:]
    small = F.interpolate(images, size=(max(8, round(h * factor)), max(8, round(w * factor))), mode="bilinear",
                          antialias=True, align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0.0, 1.0)
