"""Dehazing by the dark channel prior (He et al. 2009) with a guided-filter transmission, scaled by severity.

The scattering model I = J*t + A*(1-t) is inverted as J = (I - A) / max(t, t0) + A. The atmospheric
light A comes from the diagnosis (or is estimated when it has the default white value). The
transmission comes from the dark channel of I / A, refined by a guided filter so that it follows
edges. The diagnosis then sets how much haze is removed: the haze thickness 1 - t is rescaled so that
its mean over the image equals 1 - t_diag, the mean transmission the diagnosis's severity stands for.
Lower severity therefore always removes less haze, and an edited severity changes the result
monotonically. A coarse transmission map in the diagnosis, when present, sets that scale region by
region instead of once per image.

Everything global runs on a copy of at most :data:`WORK_SIDE` pixels a side: the guided filter's
linear coefficients are fitted there and applied to the full-resolution luminance (the fast guided
filter), so full resolution only sees pointwise work and any image size fits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...diagnosis import Haze, calibration
from ...filters import (
    dark_channel,
    estimate_atmospheric_light,
    guided_filter_coefficients,
    resize_max_side,
    rgb_to_luma,
)

DEFAULT_LIGHT = (1.0, 1.0, 1.0)
MIN_TRANSMISSION = 0.1
OMEGA = 0.95
WORK_SIDE = 768
GUIDED_EPS = 1e-3
MAX_THICKNESS_SCALE = 4.0


def patch_radius_for(height: int, width: int) -> int:
    """Dark-channel patch radius in pixels: about 1/70 of the shorter side (7 px at 1 MP), at least 1."""
    return max(1, round(min(height, width) / 70))


def target_transmission(haze: Haze) -> float:
    """The mean transmission 0.1..1 the diagnosis asks for: its own value when it agrees with its severity
    (within rounding), otherwise the value the severity stands for, since a person may edit only that."""
    if calibration.severity_from_transmission(haze.transmission) == haze.severity:
        return haze.transmission
    return calibration.transmission_from_severity(haze.severity)


@dataclass(frozen=True)
class DehazePlan:
    """What dehazing needs, measured at working resolution.

    ``atmospheric_light`` is ``[B,3]``; the transmission at full resolution is
    ``1 - scale * (1 - (a * luma + b))`` with ``a``, ``b`` and ``scale`` maps ``[B,1,h,w]`` upsampled.
    """

    atmospheric_light: torch.Tensor
    coefficient_a: torch.Tensor
    coefficient_b: torch.Tensor
    thickness_scale: torch.Tensor


def plan(images: torch.Tensor, haze: Haze) -> DehazePlan:
    """Measure airlight, transmission model and thickness scale on a copy of at most WORK_SIDE px a side."""
    small = resize_max_side(images, WORK_SIDE)
    radius = patch_radius_for(*small.shape[-2:])
    if tuple(haze.atmospheric_light) == DEFAULT_LIGHT:
        light = estimate_atmospheric_light(small, patch_radius=radius)
    else:
        light = torch.tensor(haze.atmospheric_light, dtype=images.dtype, device=images.device)
        light = light.expand(images.shape[0], 3)
    raw = 1.0 - OMEGA * dark_channel(small / light.reshape(-1, 3, 1, 1).clamp_min(0.05), radius)
    luma = rgb_to_luma(small)
    coefficient_a, coefficient_b = guided_filter_coefficients(luma, raw, 4 * radius, GUIDED_EPS)
    thickness = 1.0 - (coefficient_a * luma + coefficient_b).clamp(0.0, 1.0)
    wanted = 1.0 - target_transmission(haze)
    if haze.transmission_map is not None:
        rows = torch.tensor(haze.transmission_map, dtype=images.dtype, device=images.device)[None, None]
        wanted_map = 1.0 - rows.expand(images.shape[0], 1, -1, -1)
        # Keep the map's regional pattern but take its overall level from the severity, which may be edited.
        wanted_map = wanted_map * (wanted / wanted_map.mean(dim=(2, 3), keepdim=True).clamp_min(1e-3))
        measured = F.adaptive_avg_pool2d(thickness, wanted_map.shape[-2:])
        scale = wanted_map / measured.clamp_min(0.02)
    else:
        scale = (wanted / thickness.mean(dim=(1, 2, 3)).clamp_min(0.02)).view(-1, 1, 1, 1)
    return DehazePlan(light, coefficient_a, coefficient_b, scale.clamp(0.0, MAX_THICKNESS_SCALE))


def apply_plan(images: torch.Tensor, dehaze_plan: DehazePlan) -> torch.Tensor:
    """Dehaze full-resolution ``[B,3,H,W]`` with a plan made on (a downscaled copy of) the same images."""
    size = images.shape[-2:]

    def upsample(x: torch.Tensor) -> torch.Tensor:
        return x if x.shape[-2:] == size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    light = dehaze_plan.atmospheric_light.to(images).reshape(-1, 3, 1, 1)
    refined = upsample(dehaze_plan.coefficient_a) * rgb_to_luma(images) + upsample(dehaze_plan.coefficient_b)
    thickness = 1.0 - refined.clamp(0.0, 1.0)
    transmission = (1.0 - upsample(dehaze_plan.thickness_scale) * thickness).clamp(MIN_TRANSMISSION, 1.0)
    return ((images - light) / transmission + light).clamp(0.0, 1.0)


def dehaze(images: torch.Tensor, haze: Haze) -> torch.Tensor:
    """Remove the haze a :class:`~rnr.diagnosis.Haze` record describes from RGB ``[B,3,H,W]`` in 0..1."""
    return apply_plan(images, plan(images, haze))
