"""Run an image function tile by tile with seamless blending, for images too large to process at once.

:func:`tiled_apply` cuts ``[B,C,H,W]`` images into overlapping tiles, runs a function on each tile
and blends the results with raised-cosine weights that sum to exactly one across every overlap, so a
pointwise function gives the untiled result and a local one leaves no seams. Only one tile's
intermediate results are alive at a time, so peak memory follows the tile size, not the image size.

A function that needs global statistics (the atmospheric light of a whole photo, say) must compute
them once beforehand, on the full image or a downscaled copy, and close over them; extra full-size
inputs (a coarse map, a mask) can be concatenated to the images as extra channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .errors import ImageError

Progress = Callable[[int, int], None]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``0..length`` with at least ``overlap`` shared pixels.

    The last tile is shifted back to end exactly at ``length``; a length that fits in one tile gives ``[0]``.
    """
    if length <= tile:
        return [0]
    step = tile - overlap
    count = math.ceil((length - tile) / step) + 1
    starts = [min(i * step, length - tile) for i in range(count)]
    return sorted(set(starts))


def _ramp(size: int, overlap: int, rise: bool, fall: bool, device: torch.device) -> torch.Tensor:
    """1-D weights of one tile: zero on the outer quarter of an overlap, sin^2 up to one, so that the
    falling ramp of one tile and the rising ramp of the next sum to one."""
    weight = torch.ones(size, dtype=torch.float32, device=device)
    if overlap <= 0:
        return weight
    margin = overlap // 4
    ramp_length = max(1, overlap - 2 * margin)
    t = torch.arange(overlap, dtype=torch.float32, device=device)
    u = ((t - margin + 0.5) / ramp_length).clamp(0.0, 1.0)
    rising = torch.sin(0.5 * math.pi * u) ** 2
    if rise:
        weight[:overlap] *= rising[: min(overlap, size)]
    if fall:
        weight[size - overlap:] *= rising.flip(0)[-min(overlap, size):]
    return weight


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, tile: int = 1024,
                overlap: int = 64, progress: Progress | None = None) -> torch.Tensor:
    """``fn(images)`` computed tile by tile: ``fn`` maps ``[B,C,h,w]`` to ``[B,C',h,w]`` (same h, w).

    ``tile`` is the tile side in pixels, ``overlap`` how many pixels neighbouring tiles share (make it
    larger than the reach of ``fn``: twice a filter radius is a good rule). Images no larger than one
    tile go to ``fn`` whole. ``progress(done, total)`` is called after each tile and may raise
    :class:`rnr.errors.Interrupted`. The output has ``fn``'s channels and dtype on ``images``' device.
    """
    if images.dim() != 4:
        raise ImageError(f"tiled_apply needs images as [B,C,H,W], got shape {tuple(images.shape)}")
    tile, overlap = int(tile), int(overlap)
    if tile < 1 or overlap < 0 or overlap >= tile:
        raise ValueError(f"tiled_apply needs tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    height, width = images.shape[-2:]
    rows = tile_starts(height, tile, overlap)
    cols = tile_starts(width, tile, overlap)
    total = len(rows) * len(cols)
    if total == 1:
        result = fn(images)
        if progress is not None:
            progress(1, 1)
        return result

    output: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, height, width, dtype=torch.float32, device=images.device)
    done = 0
    for top in rows:
        tile_h = min(tile, height)
        weight_h = _ramp(tile_h, overlap, top > 0, top + tile_h < height, images.device)
        for left in cols:
            tile_w = min(tile, width)
            piece = fn(images[:, :, top:top + tile_h, left:left + tile_w])
            if piece.shape[-2:] != (tile_h, tile_w) or piece.shape[0] != images.shape[0]:
                raise ValueError(f"tiled_apply: fn must keep batch and tile size "
                                 f"({images.shape[0]}, {tile_h}x{tile_w}), "
                                 f"got {tuple(piece.shape)}")
            if output is None:
                output = torch.zeros(images.shape[0], piece.shape[1], height, width, dtype=torch.float32,
                                     device=images.device)
            weight_w = _ramp(tile_w, overlap, left > 0, left + tile_w < width, images.device)
            weight = weight_h[:, None] * weight_w[None, :]
            output[:, :, top:top + tile_h, left:left + tile_w] += piece.float().to(images.device) * weight
            weight_sum[:, :, top:top + tile_h, left:left + tile_w] += weight
            done += 1
            if progress is not None:
                progress(done, total)
    assert output is not None
    return (output / weight_sum).to(piece.dtype)
