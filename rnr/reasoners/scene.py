"""Scene text from simple image statistics: what a photo shows, never what is wrong with it.

The classic and lite reasoners have no language model, so they describe the content with a few
robust statistics of a small copy of the image: brightness, colour palette, the share of sky at the
top, greenery, edge density and the dominant edge orientation. The words are chosen so that the text
never names a degradation (checked by :func:`rnr.diagnosis.degradation_words_in`); a restorer that
reads it learns about the content it should keep, e.g. "an outdoor scene with a bright sky above
green foliage and strong vertical structures; cool blue tones, evenly lit".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..diagnosis import degradation_words_in
from ..filters import resize_max_side, rgb_to_luma

ANALYSIS_SIDE = 128

_HUE_NAMES = ((20, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "teal"), (255, "blue"),
              (290, "purple"), (335, "pink"), (360, "red"))
_WARM = {"red", "orange", "yellow", "pink"}
_COOL = {"teal", "blue", "purple"}


@dataclass(frozen=True)
class SceneStats:
    """Statistics of one image (fractions 0..1, brightness 0..1)."""

    brightness: float
    contrast: float
    saturation: float
    sky_fraction: float
    """Share of the top third that is bright, smooth and grey or blue."""
    greenery_fraction: float
    water_or_blue_fraction: float
    edge_density: float
    """Share of pixels on a clear edge."""
    vertical_share: float
    """Share of edge strength on near-vertical edges (gradients pointing sideways)."""
    horizontal_share: float
    hue_name: str
    """Dominant hue of the saturated pixels ('' when the image is nearly grey)."""


def _hsv(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = images[:, 0], images[:, 1], images[:, 2]
    high, _ = images.max(dim=1)
    low, _ = images.min(dim=1)
    delta = high - low
    safe = delta.clamp(min=1e-6)
    hue = torch.where(high == r, ((g - b) / safe) % 6, torch.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(delta > 1e-6, hue * 60.0, torch.zeros_like(hue))
    saturation = torch.where(high > 1e-6, delta / high.clamp(min=1e-6), torch.zeros_like(high))
    return hue, saturation, high


def _hue_name(hue_deg: float) -> str:
    for upper, name in _HUE_NAMES:
        if hue_deg < upper:
            return name
    return "red"


def scene_stats(images: torch.Tensor) -> list[SceneStats]:
    """Content statistics per image of a batch [B,3,H,W] in 0..1."""
    small = resize_max_side(images.float(), ANALYSIS_SIDE)
    b, _, h, w = small.shape
    luma = rgb_to_luma(small)[:, 0]
    hue, sat, value = _hsv(small)
    gx = torch.zeros_like(luma)
    gy = torch.zeros_like(luma)
    if w > 2:
        gx[:, :, 1:-1] = (luma[:, :, 2:] - luma[:, :, :-2]) / 2
    if h > 2:
        gy[:, 1:-1, :] = (luma[:, 2:, :] - luma[:, :-2, :]) / 2
    magnitude = torch.sqrt(gx ** 2 + gy ** 2)
    top = max(1, h // 3)
    out = []
    for i in range(b):
        y, s, hu, m = luma[i], sat[i], hue[i], magnitude[i]
        top_y, top_s, top_h, top_m = y[:top], s[:top], hu[:top], m[:top]
        skyish = (top_y > 0.55) & (top_m < 0.03) & ((top_s < 0.25) | ((top_h > 180) & (top_h < 260)))
        green = (hu > 70) & (hu < 160) & (s > 0.2) & (value[i] > 0.12)
        blue = (hu > 180) & (hu < 260) & (s > 0.25)
        edges = m > 0.06
        strength = m.sum().clamp(min=1e-6)
        vertical = (m * (gx[i].abs() > 2 * gy[i].abs())).sum() / strength
        horizontal = (m * (gy[i].abs() > 2 * gx[i].abs())).sum() / strength
        colourful = s > 0.25
        if int(colourful.sum()) > 0.05 * colourful.numel():
            hist = torch.histc(hu[colourful], bins=36, min=0, max=360)
            hue_name = _hue_name(float(hist.argmax()) * 10 + 5)
        else:
            hue_name = ""
        out.append(SceneStats(
            brightness=float(y.mean()), contrast=float(y.std()) if y.numel() > 1 else 0.0,
            saturation=float(s.mean()), sky_fraction=float(skyish.float().mean()),
            greenery_fraction=float(green.float().mean()), water_or_blue_fraction=float(blue.float().mean()),
            edge_density=float(edges.float().mean()), vertical_share=float(vertical),
            horizontal_share=float(horizontal), hue_name=hue_name))
    return out


def describe(stats: SceneStats) -> str:
    """One sentence about the content of an image with these statistics."""
    outdoor = stats.sky_fraction > 0.35 or stats.greenery_fraction > 0.25
    if stats.edge_density > 0.25:
        subject = "a busy, detailed scene"
    elif outdoor:
        subject = "an outdoor scene"
    elif stats.edge_density < 0.03:
        subject = "a simple composition of smooth surfaces"
    else:
        subject = "a scene"
    parts = []
    if stats.sky_fraction > 0.35:
        sky = "a bright sky" if stats.brightness > 0.45 else "a pale sky"
        if stats.greenery_fraction > 0.12:
            parts.append(f"{sky} above green foliage")
        else:
            parts.append(f"{sky} at the top")
    elif stats.greenery_fraction > 0.12:
        parts.append("green foliage" if stats.greenery_fraction < 0.45 else "dense green vegetation")
    if stats.water_or_blue_fraction > 0.3 and stats.sky_fraction <= 0.35:
        parts.append("large blue areas")
    if stats.vertical_share > 0.45 and stats.edge_density > 0.04:
        parts.append("strong vertical structures")
    elif stats.horizontal_share > 0.45 and stats.edge_density > 0.04:
        parts.append("long horizontal lines")
    if 0.12 < stats.edge_density <= 0.25:
        parts.append("fine detail and texture")
    elif stats.edge_density <= 0.03 and subject != "a simple composition of smooth surfaces":
        parts.append("broad smooth areas")
    sentence = subject
    if parts:
        sentence += " with " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])
    if not stats.hue_name or stats.saturation < 0.12:
        palette = "muted, nearly neutral colours"
    elif stats.hue_name in _WARM:
        palette = f"warm {stats.hue_name} tones"
    elif stats.hue_name in _COOL:
        palette = f"cool {stats.hue_name} tones"
    else:
        palette = f"mostly {stats.hue_name} tones"
    if stats.brightness < 0.2:
        light = "a dark, low-key exposure"
    elif stats.brightness < 0.35:
        light = "dim lighting"
    elif stats.brightness > 0.7:
        light = "a bright, high-key exposure"
    else:
        light = "even lighting"
    contrast = "high contrast" if stats.contrast > 0.28 else "gentle contrast" if stats.contrast < 0.1 else ""
    tail = ", ".join(p for p in (palette, light, contrast) if p)
    text = f"{sentence[0].upper()}{sentence[1:]}; {tail}."
    # The vocabulary above names no degradation; this guards future edits of it.
    if degradation_words_in(text):
        return "A photograph."
    return text


def describe_scenes(images: torch.Tensor) -> list[str]:
    """A content description per image of a batch [B,3,H,W] in 0..1 (never names a degradation)."""
    return [describe(s) for s in scene_stats(images)]
