"""Small torch image operations the classic estimators share (batched, any device, float [B,C,H,W]).

The replicate-border gaussian here is the one the calibration was fitted with; the shared filters of
:mod:`rnr.filters` are used wherever their mirrored borders make no measurable difference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma [B,1,H,W] of RGB images [B,3,H,W]."""
    weights = images.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def gaussian_kernel1d(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def separable_conv(images: torch.Tensor, kernel_x: torch.Tensor, kernel_y: torch.Tensor) -> torch.Tensor:
    """Convolve every channel with kernel_y (rows) then kernel_x (columns), reflect-padded, same size."""
    b, c, h, w = images.shape
    x = images.reshape(b * c, 1, h, w)
    ry, rx = kernel_y.numel() // 2, kernel_x.numel() // 2
    x = F.pad(x, (rx, rx, ry, ry), mode="replicate")
    x = F.conv2d(x, kernel_y.view(1, 1, -1, 1))
    x = F.conv2d(x, kernel_x.view(1, 1, 1, -1))
    return x.reshape(b, c, h, w)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of std ``sigma`` pixels (replicate borders)."""
    if sigma <= 0:
        return images
    kernel = gaussian_kernel1d(sigma, images.device, images.dtype)
    return separable_conv(images, kernel, kernel)


def native_tiles(images: torch.Tensor, tile: int, grid: int) -> tuple[torch.Tensor, int]:
    """Crops at the original resolution for estimators that must see single pixels (noise, blur, rain).

    An image no bigger than ``tile`` on either side is used whole. Otherwise up to ``grid`` x ``grid``
    evenly spread tiles (of side ``tile``, or the image side if smaller) are cut from each image.
    Returns [B*k, C, th, tw] ordered image by image, and k.
    """
    b, c, h, w = images.shape
    th, tw = min(tile, h), min(tile, w)
    rows = 1 if th == h else min(grid, math.ceil(h / tile))
    cols = 1 if tw == w else min(grid, math.ceil(w / tile))
    if rows == 1 and cols == 1 and (th, tw) == (h, w):
        return images, 1
    ys = [round(i * (h - th) / max(1, rows - 1)) for i in range(rows)] if rows > 1 else [(h - th) // 2]
    xs = [round(j * (w - tw) / max(1, cols - 1)) for j in range(cols)] if cols > 1 else [(w - tw) // 2]
    crops = [images[:, :, y:y + th, x:x + tw] for y in ys for x in xs]
    k = len(crops)
    return torch.stack(crops, dim=1).reshape(b * k, c, th, tw), k
