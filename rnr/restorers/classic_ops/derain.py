"""Rain-streak removal guided by the streak direction and length of a :class:`~rnr.diagnosis.Rain` record.

The image is rotated so that the streaks run vertically. There a streak is a bright ridge that is thin
across (horizontally) and long along (vertically): a horizontal grey opening (erosion then dilation,
a few pixels wide) removes it, leaving the background; the residual ``image - background`` holds
the streaks plus any thin bright detail of the scene. Averaging that residual along the streak
direction over about half a streak length keeps the long straight streaks and dilutes scene detail,
which is rarely long, straight and aligned with the rain; the same average across the streaks measures
how much residual is just texture. Where the along-streak evidence clearly exceeds the across-streak
one, the residual is removed. Only the correction is rotated back, so pixels without rain keep their
exact values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...diagnosis import Rain
from ...filters import box_filter_1d

MAX_STREAK_WIDTH_PX = 4


def _rotation_grid(out_h: int, out_w: int, src_h: int, src_w: int, angle_deg: float, forward: bool,
                   device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sampling grid ``[1,out_h,out_w,2]`` between the image and a canvas whose vertical axis runs along the
    streaks (``forward``: canvas pixels sample the image; otherwise image pixels sample the canvas)."""
    angle = math.radians(angle_deg)
    # Canvas axes in image coordinates (x right, y down): across the streaks and down along them.
    across = (math.cos(angle), math.sin(angle))
    down = (-math.sin(angle), math.cos(angle))
    ys = torch.arange(out_h, device=device, dtype=dtype) - (out_h - 1) / 2.0
    xs = torch.arange(out_w, device=device, dtype=dtype) - (out_w - 1) / 2.0
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    if forward:
        src_x = x * across[0] + y * down[0]
        src_y = x * across[1] + y * down[1]
    else:
        src_x = x * across[0] + y * across[1]
        src_y = x * down[0] + y * down[1]
    # Normalised coordinates for grid_sample with align_corners=False.
    grid_x = (src_x + (src_w - 1) / 2.0 + 0.5) * 2.0 / src_w - 1.0
    grid_y = (src_y + (src_h - 1) / 2.0 + 0.5) * 2.0 / src_h - 1.0
    return torch.stack([grid_x, grid_y], dim=-1)[None]


def _canvas_size(height: int, width: int, angle_deg: float) -> tuple[int, int]:
    c, s = abs(math.cos(math.radians(angle_deg))), abs(math.sin(math.radians(angle_deg)))
    return math.ceil(height * c + width * s), math.ceil(width * c + height * s)


def _horizontal_opening(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey opening with a horizontal line of ``2*radius+1`` px: removes bright features thinner than that."""
    pad = (radius, radius, 0, 0)
    k = (1, 2 * radius + 1)
    eroded = -F.max_pool2d(F.pad(-x, pad, mode="replicate"), k, stride=1)
    return F.max_pool2d(F.pad(eroded, pad, mode="replicate"), k, stride=1)


def streak_correction(canvas: torch.Tensor, length_px: float, sensitivity: float) -> torch.Tensor:
    """The (non-positive) correction removing vertical bright streaks from a rotated ``[B,3,H,W]`` canvas."""
    background = _horizontal_opening(canvas, MAX_STREAK_WIDTH_PX)
    residual = canvas - background                                    # >= 0: thin bright detail
    grey = residual.mean(dim=1, keepdim=True)
    along = max(2, round(length_px / 4))
    evidence_along = box_filter_1d(grey, along, -2)
    evidence_across = box_filter_1d(evidence_along, 3 * MAX_STREAK_WIDTH_PX, -1)
    # A streak stands out along its direction against its own neighbourhood across; texture does not.
    contrast = evidence_along - evidence_across
    scale = evidence_across + 0.01
    mask = ((contrast / scale - 1.0 / sensitivity) * sensitivity).clamp(0.0, 1.0)
    return -mask * residual


def derain(images: torch.Tensor, rain: Rain) -> torch.Tensor:
    """Remove the rain streaks a :class:`~rnr.diagnosis.Rain` record describes from RGB ``[B,3,H,W]`` in 0..1."""
    batch, _channels, height, width = images.shape
    if min(height, width) < 3:
        return images
    length = rain.length_px if rain.length_px > 0 else 0.1 * min(height, width)
    # Denser rain (higher severity) makes the detector more willing to call a ridge a streak.
    sensitivity = 1.0 + 2.0 * min(1.0, rain.severity / 100.0)
    canvas_h, canvas_w = _canvas_size(height, width, rain.angle_deg)
    grid = _rotation_grid(canvas_h, canvas_w, height, width, rain.angle_deg, True, images.device, images.dtype)
    canvas = F.grid_sample(images, grid.expand(batch, -1, -1, -1), mode="bilinear", padding_mode="reflection",
                           align_corners=False)
    correction = streak_correction(canvas, length, sensitivity)
    back = _rotation_grid(height, width, canvas_h, canvas_w, rain.angle_deg, False, images.device, images.dtype)
    correction = F.grid_sample(correction, back.expand(batch, -1, -1, -1), mode="bilinear", padding_mode="zeros",
                               align_corners=False)
    return (images + correction).clamp(0.0, 1.0)
