"""Relative depth maps for haze: given ones normalised, or random smooth ones with scene priors.

Depth is relative: 1 is the farthest point of the image, and only ratios matter because the haze
coefficient beta is solved for the target mean transmission afterwards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .params import DegradeError
from .seeding import Streams, smooth_field


def normalise_given_depth(depth: torch.Tensor, batch: int, height: int, width: int,
                          device: torch.device) -> torch.Tensor:
    """A user depth map ([H,W], [B,H,W] or [B,1,H,W], larger = farther) as [B,1,H,W] scaled to max 1."""
    if not isinstance(depth, torch.Tensor):
        raise DegradeError(f"depth: expected a torch tensor [B,1,H,W], [B,H,W] or [H,W], got {type(depth).__name__}")
    depth = depth.detach().to(device=device, dtype=torch.float32)
    if depth.ndim == 2:
        depth = depth[None, None]
    elif depth.ndim == 3:
        depth = depth[:, None]
    if depth.ndim != 4 or depth.shape[1] != 1 or depth.shape[0] not in (1, batch):
        raise DegradeError(f"depth: expected shape [{batch},1,H,W], [{batch},H,W] or [H,W], got {tuple(depth.shape)}")
    if not torch.isfinite(depth).all() or (depth < 0).any():
        raise DegradeError("depth: expected finite non-negative values (larger = farther); found NaN, inf or "
                           "negative values")
    if depth.shape[-2:] != (height, width):
        depth = F.interpolate(depth, size=(height, width), mode="bilinear", align_corners=False)
    depth = depth.expand(batch, 1, height, width)
    peak = depth.amax(dim=(2, 3), keepdim=True)
    if (peak <= 0).any():
        raise DegradeError("depth: a depth map is zero everywhere; give larger values for farther points")
    return depth / peak


def _unit_range(field: torch.Tensor) -> torch.Tensor:
    low = field.amin(dim=(2, 3), keepdim=True)
    high = field.amax(dim=(2, 3), keepdim=True)
    return (field - low) / (high - low).clamp_min(1e-6)


def _vertical(streams: Streams, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Sky far above a horizon, a ground plane coming nearer towards the bottom, slightly tilted."""
    horizon = streams.uniform(0.15, 0.65)
    power = streams.uniform(0.5, 2.0)
    tilt = streams.uniform(-0.15, 0.15)
    y = torch.linspace(0.0, 1.0, height, device=device)[:, None]
    x = torch.linspace(-0.5, 0.5, width, device=device)[None, :]
    below = ((y + tilt * x - horizon) / (1.0 - horizon)).clamp(0.0, 1.0)
    return (1.0 - below) ** power


def _image_cue(image: torch.Tensor) -> torch.Tensor:
    """Bright, desaturated, high regions are far (sky, distant haze), smoothed to large blobs."""
    height, width = image.shape[-2:]
    brightness = image.mean(dim=0, keepdim=True)
    saturation = image.amax(dim=0, keepdim=True) - image.amin(dim=0, keepdim=True)
    cue = (brightness - 0.5 * saturation)[None]
    small = F.adaptive_avg_pool2d(cue, (max(1, min(12, height // 8)), max(1, min(12, width // 8))))
    return F.interpolate(small, size=(height, width), mode="bicubic", align_corners=False)[0]


def random_depth(image: torch.Tensor, model: str, streams: Streams) -> torch.Tensor:
    """A random relative depth map [1,H,W] in [d_min, 1] for one image [3,H,W] by the named model."""
    height, width = image.shape[-2:]
    device = image.device
    if model == "uniform":
        return torch.ones(1, height, width, device=device)
    components = {
        "vertical": lambda: _vertical(streams, height, width, device)[None],
        "smooth": lambda: smooth_field(streams, 1, height, width, streams.integer(1, 5))[0],
        "image": lambda: _image_cue(image),
    }
    if model == "mixed":
        weights = {name: streams.uniform(0.0, 1.0) for name in components}
    elif model == "image":
        weights = {"image": 1.0, "vertical": streams.uniform(0.2, 0.8), "smooth": streams.uniform(0.0, 0.3)}
    elif model == "vertical":
        weights = {"vertical": 1.0, "smooth": streams.uniform(0.0, 0.3)}
    elif model == "smooth":
        weights = {"smooth": 1.0}
    else:
        raise DegradeError(f"HazeParams.depth_model: unknown model {model!r}")
    depth = torch.zeros(1, height, width, device=device)
    for name, weight in weights.items():
        depth = depth + weight * _unit_range(components[name]()[None])[0]
    nearest = streams.uniform(0.1, 0.5)
    return nearest + (1.0 - nearest) * _unit_range(depth[None])[0]
