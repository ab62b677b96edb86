"""The one severity scale every part of ComfyUI-RnR agrees on.

Severity is an integer 1..100 for a degradation that is present and 0 for one that is absent. Each
degradation's severity is a clamped linear function of one physical parameter, so that synthetic
labels (:mod:`rnr.degrade`), every reasoner and SeverityScore speak the same scale:

=========  =========================================================  ======================
type       physical parameter                                         severity 100 at
=========  =========================================================  ======================
haze       mean transmission ``t`` of I = J*t + A*(1-t) (1 = clear)   t = 0.10
rain       streak density: opacity-weighted fraction of the image     density = 0.12
           area covered by streaks (0..1)
noise      noise standard deviation ``sigma_255`` in 0..255 units      sigma_255 = 50
           (poisson noise: the std at mid-grey, 0.5)
blur       blur extent in pixels of the analysed image: motion        extent_px = 24
           length, defocus diameter, or 4*sigma of a gaussian
=========  =========================================================  ======================

Severity words used in prompts and reports: 1-25 light, 26-50 moderate, 51-75 strong, 76-100 severe.
"""

from __future__ import annotations

import math

DEGRADATIONS: tuple[str, ...] = ("haze", "rain", "noise", "blur")

# Restoration runs against the order of image formation: the sensor adds noise last, the lens/camera
# blurs before that, rain sits in front of the scene and haze lies in the atmosphere behind it.
DEFAULT_ORDER: tuple[str, ...] = ("noise", "blur", "rain", "haze")

HAZE_MIN_TRANSMISSION = 0.10
RAIN_DENSITY_AT_100 = 0.12
NOISE_SIGMA_255_AT_100 = 50.0
BLUR_EXTENT_PX_AT_100 = 24.0

# Synthetic data draws present degradations with severities in [MIN_SYNTH_SEVERITY, 100], so that
# "present" always means visible; reasoners flag a degradation at or above their own threshold.
MIN_SYNTH_SEVERITY = 10

SEVERITY_WORDS: tuple[tuple[int, str], ...] = ((25, "light"), (50, "moderate"), (75, "strong"), (100, "severe"))


def _to_severity(fraction: float) -> int:
    """Map a 0..1 fraction of the full scale to an integer severity 0..100 (NaN counts as 0)."""
    if not math.isfinite(fraction) or fraction <= 0.0:
        return 0
    return int(min(100, max(1, round(fraction * 100.0))))


def severity_from_transmission(transmission: float) -> int:
    """Haze severity 0..100 from the mean transmission t in 0..1 (1 = no haze)."""
    return _to_severity((1.0 - transmission) / (1.0 - HAZE_MIN_TRANSMISSION))


def transmission_from_severity(severity: float) -> float:
    """Mean transmission 0.1..1 that gives this haze severity."""
    return 1.0 - (1.0 - HAZE_MIN_TRANSMISSION) * _clamp_unit(severity / 100.0)


def severity_from_rain_density(density: float) -> int:
    """Rain severity 0..100 from the opacity-weighted streak coverage 0..1."""
    return _to_severity(density / RAIN_DENSITY_AT_100)


def rain_density_from_severity(severity: float) -> float:
    """Opacity-weighted streak coverage that gives this rain severity."""
    return RAIN_DENSITY_AT_100 * _clamp_unit(severity / 100.0)


def severity_from_noise_sigma(sigma_255: float) -> int:
    """Noise severity 0..100 from the noise std in 0..255 units."""
    return _to_severity(sigma_255 / NOISE_SIGMA_255_AT_100)


def noise_sigma_from_severity(severity: float) -> float:
    """Noise std in 0..255 units that gives this noise severity."""
    return NOISE_SIGMA_255_AT_100 * _clamp_unit(severity / 100.0)


def severity_from_blur_extent(extent_px: float) -> int:
    """Blur severity 0..100 from the blur extent in pixels."""
    return _to_severity(extent_px / BLUR_EXTENT_PX_AT_100)


def blur_extent_from_severity(severity: float) -> float:
    """Blur extent in pixels that gives this blur severity."""
    return BLUR_EXTENT_PX_AT_100 * _clamp_unit(severity / 100.0)


def combined_severity(severities: dict[str, int] | list[int] | tuple[int, ...]) -> int:
    """Overall severity 0..100 of several degradations: 100 * (1 - prod(1 - s/100)).

    One degradation at severity s gives s; two moderate ones give more than either alone.
    """
    values = severities.values() if isinstance(severities, dict) else severities
    keep = 1.0
    for value in values:
        keep *= 1.0 - _clamp_unit(float(value) / 100.0)
    return int(round(100.0 * (1.0 - keep)))


def severity_word(severity: int) -> str:
    """'light', 'moderate', 'strong' or 'severe' for a severity 1..100 ('none' for 0)."""
    if severity <= 0:
        return "none"
    for upper, word in SEVERITY_WORDS:
        if severity <= upper:
            return word
    return "severe"


def _clamp_unit(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, value))
