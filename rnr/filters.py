"""Shared torch image operations: box, gaussian, min/max filters, guided filters, dark channel prior.

Every function takes float tensors laid out ``[B,C,H,W]`` on any device, works for any size down to
1x1 and keeps the batch independent. Window sizes are given as a radius in pixels (window side
``2*radius+1``). Edges are handled without padding artefacts: box means are normalised by the number
of pixels actually inside the window, other filters pad by symmetric reflection.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Orthonormal colour transform (luminance, red-green, blue-yellow): noise of std s in each RGB channel
# stays noise of std s in each opponent channel, so one threshold fits all three.
_OPPONENT = torch.tensor([[1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
                          [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
                          [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)]])
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _check_4d(x: torch.Tensor, name: str = "x") -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must be a [B,C,H,W] tensor, got shape {tuple(x.shape)}")


def symmetric_indices(n: int, before: int, after: int, device: torch.device | None = None) -> torch.Tensor:
    """Indices 0..n-1 that extend a length-``n`` axis by ``before``/``after`` samples, mirrored at the edges.

    Mirroring is symmetric (the edge sample repeats) and wraps as often as needed, so any pad works for
    any ``n >= 1``.
    """
    index = torch.arange(-before, n + after, device=device)
    period = 2 * n
    index = torch.remainder(index, period)
    return torch.where(index >= n, period - 1 - index, index)


def pad_symmetric(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Pad the last two axes by symmetric reflection; unlike ``F.pad(mode='reflect')`` any size works."""
    if left == right == top == bottom == 0:
        return x
    h, w = x.shape[-2:]
    if max(top, bottom) <= h and max(left, right) <= w:
        # One mirror is enough: flipped edge slices are much cheaper than a gather.
        x = torch.cat([x[..., :top, :].flip(-2), x, x[..., h - bottom:, :].flip(-2)], dim=-2)
        return torch.cat([x[..., :left].flip(-1), x, x[..., w - right:].flip(-1)], dim=-1)
    rows = symmetric_indices(h, top, bottom, x.device)
    cols = symmetric_indices(w, left, right, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def box_filter_1d(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Mean over a window of ``2*radius+1`` samples along one axis ``dim``; edges average what lies inside."""
    dim = dim % x.dim()
    n = x.shape[dim]
    if radius <= 0 or n == 1:
        return x
    radius = min(radius, n)
    # Centring each line first keeps the running sums small, so float32 stays exact to ~1e-6 even
    # along 8000-pixel rows.
    offset = x.mean(dim=dim, keepdim=True)
    csum = torch.cumsum(x - offset, dim=dim)

    def edge(index: int, length: int) -> torch.Tensor:
        sizes = [-1] * x.dim()
        sizes[dim] = length
        return csum.narrow(dim, index, 1).expand(*sizes)

    # Running sum with `radius + 1` zeros before and `radius` copies of the total after, so the window
    # sum of sample i is padded[i + 2r + 1] - padded[i].
    padded = torch.cat([torch.zeros_like(edge(0, radius + 1)), csum, edge(n - 1, radius)], dim=dim)
    total = padded.narrow(dim, 2 * radius + 1, n) - padded.narrow(dim, 0, n)
    position = torch.arange(n, device=x.device)
    count = torch.clamp(position + radius + 1, max=n) - torch.clamp(position - radius, min=0)
    shape = [1] * x.dim()
    shape[dim] = n
    return total / count.to(x.dtype).view(shape) + offset


def box_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Local mean over a ``(2*radius+1)^2`` window, in O(1) per pixel; edges average what lies inside."""
    _check_4d(x)
    radius = int(radius)
    return box_filter_1d(box_filter_1d(x, radius, -1), radius, -2)


def gaussian_kernel1d(sigma_px: float, radius: int | None = None, *, device: torch.device | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A normalised 1-D gaussian of std ``sigma_px`` pixels (radius 3 sigma unless given)."""
    if radius is None:
        radius = max(1, math.ceil(3.0 * sigma_px))
    if sigma_px <= 0:
        kernel = torch.zeros(2 * radius + 1, device=device, dtype=dtype)
        kernel[radius] = 1.0
        return kernel
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-0.5 * (t / sigma_px) ** 2)
    return kernel / kernel.sum()


def separable_filter(x: torch.Tensor, kernel_h: torch.Tensor, kernel_w: torch.Tensor) -> torch.Tensor:
    """Correlate each channel with ``kernel_h`` along H then ``kernel_w`` along W (odd lengths), mirrored edges."""
    _check_4d(x)
    channels = x.shape[1]
    ry, rx = kernel_h.numel() // 2, kernel_w.numel() // 2
    out = pad_symmetric(x, rx, rx, ry, ry)
    kw = kernel_w.to(x).view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    kh = kernel_h.to(x).view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    out = F.conv2d(out, kw, groups=channels)
    return F.conv2d(out, kh, groups=channels)


def gaussian_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Gaussian blur of std ``sigma_px`` pixels (separable, mirrored edges); ``sigma_px <= 0`` returns ``x``."""
    _check_4d(x)
    if sigma_px <= 0:
        return x
    kernel = gaussian_kernel1d(sigma_px, device=x.device, dtype=x.dtype)
    return separable_filter(x, kernel, kernel)


def min_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Local minimum over a ``(2*radius+1)^2`` window (grey erosion), edges replicated."""
    _check_4d(x)
    return -max_filter(-x, radius)


def max_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Local maximum over a ``(2*radius+1)^2`` window (grey dilation), edges replicated."""
    _check_4d(x)
    radius = int(radius)
    if radius <= 0:
        return x
    k = 2 * radius + 1
    out = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    out = F.max_pool2d(out, (1, k), stride=1)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.max_pool2d(out, (k, 1), stride=1)


def median_filter(x: torch.Tensor, radius_h: int, radius_w: int) -> torch.Tensor:
    """Local median over a ``(2*radius_h+1) x (2*radius_w+1)`` window, mirrored edges.

    Memory grows with the window area; use small windows or thin (1-pixel wide) oriented ones.
    """
    _check_4d(x)
    if radius_h <= 0 and radius_w <= 0:
        return x
    padded = pad_symmetric(x, radius_w, radius_w, radius_h, radius_h)
    patches = padded.unfold(2, 2 * radius_h + 1, 1).unfold(3, 2 * radius_w + 1, 1)
    return patches.reshape(*patches.shape[:4], -1).median(dim=-1).values


def rgb_to_luma(images: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma ``[B,1,H,W]`` of RGB images ``[B,3,H,W]``."""
    _check_4d(images, "images")
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return _LUMA_WEIGHTS[0] * r + _LUMA_WEIGHTS[1] * g + _LUMA_WEIGHTS[2] * b


def rgb_to_opponent(images: torch.Tensor) -> torch.Tensor:
    """Orthonormal (luminance, red-green, blue-yellow) channels of RGB ``[B,3,H,W]``.

    The inverse is :func:`opponent_to_rgb`."""
    _check_4d(images, "images")
    return torch.einsum("ij,bjhw->bihw", _OPPONENT.to(images), images)


def opponent_to_rgb(channels: torch.Tensor) -> torch.Tensor:
    """RGB from the channels of :func:`rgb_to_opponent`."""
    _check_4d(channels, "channels")
    return torch.einsum("ji,bjhw->bihw", _OPPONENT.to(channels), channels)


def guided_filter_coefficients(guide: torch.Tensor, src: torch.Tensor, radius: int,
                               eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The smoothed linear coefficients ``(a, b)`` of the grey guided filter: output = a * guide + b.

    Computed at the resolution given; upsampling ``a`` and ``b`` and applying them to a full-resolution
    guide is the fast guided filter (He & Sun 2015), which is how huge images are handled.
    """
    _check_4d(guide, "guide")
    _check_4d(src, "src")
    mean_i = box_filter(guide, radius)
    mean_p = box_filter(src, radius)
    cov_ip = box_filter(guide * src, radius) - mean_i * mean_p
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i.clamp_min(0) + eps)
    b = mean_p - a * mean_i
    return box_filter(a, radius), box_filter(b, radius)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float, *,
                  subsample: int = 1) -> torch.Tensor:
    """Edge-preserving smoothing of ``src`` following the edges of ``guide`` (He et al., grey guide).

    ``guide`` is ``[B,1,H,W]`` (or has as many channels as ``src``, each guiding its own channel);
    ``src`` is ``[B,C,H,W]``. ``eps`` is the regularisation in squared intensity units (e.g. 1e-3
    for a 0..1 image); larger ``eps`` smooths more. ``subsample > 1`` runs the fast guided filter: the
    linear coefficients are fitted at ``1/subsample`` resolution and applied at full resolution.
    """
    _check_4d(guide, "guide")
    _check_4d(src, "src")
    h, w = guide.shape[-2:]
    small_guide, small_src = guide, src
    if subsample > 1 and min(h, w) >= 2 * subsample:
        size = (max(1, h // subsample), max(1, w // subsample))
        small_guide = F.interpolate(guide, size=size, mode="area")
        small_src = F.interpolate(src, size=size, mode="area")
        radius = max(1, round(radius / subsample))
    mean_a, mean_b = guided_filter_coefficients(small_guide, small_src, radius, eps)
    if mean_a.shape[-2:] != (h, w):
        mean_a = F.interpolate(mean_a, size=(h, w), mode="bilinear", align_corners=False)
        mean_b = F.interpolate(mean_b, size=(h, w), mode="bilinear", align_corners=False)
    return mean_a * guide + mean_b


def color_guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float, *,
                        subsample: int = 1) -> torch.Tensor:
    """Guided filter with an RGB guide ``[B,3,H,W]`` (He et al.'s colour version); ``src`` is ``[B,C,H,W]``.

    Follows colour edges that a grey guide misses (two regions of equal luminance); otherwise as
    :func:`guided_filter`.
    """
    _check_4d(guide, "guide")
    _check_4d(src, "src")
    if guide.shape[1] != 3:
        raise ValueError(f"color_guided_filter needs an RGB guide [B,3,H,W], got shape {tuple(guide.shape)}")
    full_guide = guide
    h, w = guide.shape[-2:]
    if subsample > 1 and min(h, w) >= 2 * subsample:
        size = (max(1, h // subsample), max(1, w // subsample))
        guide = F.interpolate(guide, size=size, mode="area")
        src = F.interpolate(src, size=size, mode="area")
        radius = max(1, round(radius / subsample))
    batch, channels = src.shape[:2]
    mean_i = box_filter(guide, radius)                                   # [B,3,h,w]
    mean_p = box_filter(src, radius)                                     # [B,C,h,w]
    # Products of every guide channel with every source channel: [B,3,C,h,w].
    products = (guide[:, :, None] * src[:, None]).flatten(1, 2)
    mean_ip = box_filter(products, radius).view(batch, 3, channels, *src.shape[-2:])
    cov_ip = mean_ip - mean_i[:, :, None] * mean_p[:, None]
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    products = torch.cat([guide[:, i:i + 1] * guide[:, j:j + 1] for i, j in pairs], dim=1)
    second = box_filter(products, radius)
    var = {pair: second[:, k] - mean_i[:, pair[0]] * mean_i[:, pair[1]] for k, pair in enumerate(pairs)}
    rr, rg, rb = var[(0, 0)] + eps, var[(0, 1)], var[(0, 2)]
    gg, gb, bb = var[(1, 1)] + eps, var[(1, 2)], var[(2, 2)] + eps
    # Closed-form inverse of the symmetric 3x3 covariance per pixel.
    inv_rr = gg * bb - gb * gb
    inv_rg = gb * rb - rg * bb
    inv_rb = rg * gb - gg * rb
    inv_gg = rr * bb - rb * rb
    inv_gb = rb * rg - rr * gb
    inv_bb = rr * gg - rg * rg
    det = rr * inv_rr + rg * inv_rg + rb * inv_rb
    inverse = torch.stack([torch.stack([inv_rr, inv_rg, inv_rb], 1), torch.stack([inv_rg, inv_gg, inv_gb], 1),
                           torch.stack([inv_rb, inv_gb, inv_bb], 1)], 1) / det[:, None, None]  # [B,3,3,h,w]
    a = torch.einsum("bijhw,bjchw->bichw", inverse, cov_ip)             # [B,3,C,h,w]
    b = mean_p - (a * mean_i[:, :, None]).sum(1)
    mean_a = box_filter(a.flatten(1, 2), radius)
    mean_b = box_filter(b, radius)
    if mean_a.shape[-2:] != (h, w):
        mean_a = F.interpolate(mean_a, size=(h, w), mode="bilinear", align_corners=False)
        mean_b = F.interpolate(mean_b, size=(h, w), mode="bilinear", align_corners=False)
    mean_a = mean_a.view(batch, 3, channels, h, w)
    return (mean_a * full_guide[:, :, None]).sum(1) + mean_b


def dark_channel(images: torch.Tensor, patch_radius: int = 7) -> torch.Tensor:
    """Dark channel ``[B,1,H,W]``: the minimum over colour channels and a ``(2r+1)^2`` patch (He et al.)."""
    _check_4d(images, "images")
    return min_filter(images.amin(dim=1, keepdim=True), patch_radius)


def estimate_atmospheric_light(images: torch.Tensor, dark: torch.Tensor | None = None, *, patch_radius: int = 7,
                               top_fraction: float = 0.001) -> torch.Tensor:
    """Atmospheric light A ``[B,3]`` (RGB, 0..1) by the dark channel prior.

    Takes the ``top_fraction`` of pixels with the brightest dark channel (the most haze-opaque) and
    averages their colour, which resists single bright objects better than taking the maximum.
    """
    _check_4d(images, "images")
    if dark is None:
        dark = dark_channel(images, patch_radius)
    batch = images.shape[0]
    flat_dark = dark.reshape(batch, -1)
    count = max(1, round(flat_dark.shape[1] * top_fraction))
    index = flat_dark.topk(count, dim=1).indices                         # [B,k]
    flat = images.reshape(batch, images.shape[1], -1)
    picked = flat.gather(2, index[:, None, :].expand(-1, images.shape[1], -1))
    return picked.mean(dim=2).clamp(0.0, 1.0)


def estimate_transmission(images: torch.Tensor, atmospheric_light: torch.Tensor, *, patch_radius: int = 7,
                          omega: float = 0.95) -> torch.Tensor:
    """Coarse transmission ``[B,1,H,W]`` = 1 - omega * dark_channel(I / A); refine it with a guided filter.

    ``omega`` < 1 keeps a little haze for depth perception; ``atmospheric_light`` is ``[B,3]``.
    """
    _check_4d(images, "images")
    light = atmospheric_light.to(images).reshape(images.shape[0], 3, 1, 1).clamp_min(1e-3)
    return 1.0 - omega * dark_channel(images / light, patch_radius)


def resize_max_side(images: torch.Tensor, max_side: int) -> torch.Tensor:
    """Area-downscale so the longer side is at most ``max_side`` pixels (never upscales)."""
    _check_4d(images, "images")
    h, w = images.shape[-2:]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return images
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(images, size=size, mode="area")


__all__ = [
    "box_filter", "box_filter_1d", "color_guided_filter", "dark_channel", "estimate_atmospheric_light",
    "estimate_transmission", "gaussian_blur", "gaussian_kernel1d", "guided_filter", "guided_filter_coefficients",
    "max_filter", "median_filter", "min_filter", "opponent_to_rgb", "pad_symmetric", "resize_max_side", "rgb_to_luma",
    "rgb_to_opponent", "separable_filter", "symmetric_indices",
]
