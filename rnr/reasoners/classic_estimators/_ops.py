"""Small torch image operations the classic estimators share (batched, any device, float [B,C,H,W])."""

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


def box_filter(images: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)x(2r+1) window (replicate borders), same size."""
    if radius <= 0:
        return images
    kernel = images.new_full((2 * radius + 1,), 1.0 / (2 * radius + 1))
    return separable_conv(images, kernel, kernel)


def min_filter(images: torch.Tensor, size: int) -> torch.Tensor:
    """Minimum over a size x size window (size odd, replicate borders), same size."""
    if size <= 1:
        return images
    r = size // 2
    padded = F.pad(-images, (r, r, r, r), mode="replicate")
    return -F.max_pool2d(padded, size, stride=1)


def dark_channel(images: torch.Tensor, patch: int) -> torch.Tensor:
    """He et al.'s dark channel [B,1,H,W]: min over colour channels, then over a patch x patch window."""
    return min_filter(images.amin(dim=1, keepdim=True), patch)


def downscale_to(images: torch.Tensor, max_side: int) -> tuple[torch.Tensor, float]:
    """An area-averaged copy whose longer side is at most ``max_side`` and the factor original/copy (>= 1)."""
    h, w = images.shape[-2:]
    factor = max(h, w) / max_side
    if factor <= 1.0:
        return images, 1.0
    size = (max(1, round(h / factor)), max(1, round(w / factor)))
    small = F.interpolate(images, size=size, mode="area")
    return small, max(h / size[0], w / size[1])


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


def hann_window2d(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    wy = torch.hann_window(h, periodic=False, device=device, dtype=dtype)
    wx = torch.hann_window(w, periodic=False, device=device, dtype=dtype)
    return wy[:, None] * wx[None, :]


def weighted_quantile_rows(values: torch.Tensor, q: float) -> torch.Tensor:
    """The q-quantile of each row of a [N, M] tensor (NaNs ignored; NaN where a row is all NaN)."""
    return torch.nanquantile(values, q, dim=1)


def sample_polar(maps: torch.Tensor, angles_rad: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of centred maps [N,H,W] along rays from the centre.

    ``maps`` hold a function of the 2D lag with lag (0, 0) at index (H//2, W//2), x to the right and
    y downward. Returns [N, A, L] for ``angles_rad`` [A] (0 = +x, counter-clockwise as seen on screen,
    i.e. toward -y) and ``lags`` [L] in pixels.
    """
    n, h, w = maps.shape
    dx = torch.cos(angles_rad)[:, None] * lags[None, :]
    dy = -torch.sin(angles_rad)[:, None] * lags[None, :]
    gx = (w // 2 + dx) / (w - 1) * 2 - 1
    gy = (h // 2 + dy) / (h - 1) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1).to(maps.dtype)[None].expand(n, -1, -1, -1)
    out = F.grid_sample(maps[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[:, 0]
