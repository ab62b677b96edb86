"""Physical parameters of each synthetic degradation, as frozen dataclasses.

A field left as ``None`` is drawn from the seed when the degradation is applied; the
:class:`DegradeResult` keeps the fully resolved copies that were actually used. Angles follow the
:class:`~rnr.diagnosis.Diagnosis` conventions: rain streaks in degrees from vertical (positive leaning
right at the top), motion blur in degrees from horizontal, counter-clockwise as seen on screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import RnRError

DEPTH_MODELS: tuple[str, ...] = ("uniform", "vertical", "smooth", "image", "mixed", "given")
RAIN_BLENDS: tuple[str, ...] = ("screen", "add", "over")
NOISE_KINDS: tuple[str, ...] = ("gaussian", "poisson")
BLUR_KINDS: tuple[str, ...] = ("motion", "defocus", "gaussian")
MOTION_PATHS: tuple[str, ...] = ("linear", "shake")
NOISE_DOMAINS: tuple[str, ...] = ("srgb", "linear")
GAMMA = 2.2
"""Display gamma used to go between image values and linear light (noise and blur in linear light)."""


class DegradeError(RnRError):
    """A degradation request cannot be honoured (bad severity, parameter or image)."""


def _check_range(owner: str, name: str, value: object, low: float, high: float, unit: str = "") -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DegradeError(f"{owner}.{name}: expected a finite number in [{low}, {high}]{unit}, got {value!r}")
    if not low <= value <= high:
        raise DegradeError(f"{owner}.{name}: expected a number in [{low}, {high}]{unit}, got {value!r}")


def _check_choice(owner: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise DegradeError(f"{owner}.{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_colour(owner: str, name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise DegradeError(f"{owner}.{name}: expected 3 numbers (R, G, B) in [0, 1], got {value!r}")
    for channel in value:
        _check_range(owner, name, channel, 0.0, 1.0)


@dataclass(frozen=True)
class HazeParams:
    """Haze by I = J*t + A*(1-t), t = exp(-beta*d), beta solved so that mean(t) = ``transmission``."""

    transmission: float | None = None
    """Target mean transmission over the image, 0.01..1 (1 = clear)."""
    atmospheric_light: tuple[float, float, float] | None = None
    """Mean airlight colour A (RGB, 0..1)."""
    depth_model: str | None = None
    """Random depth map: 'uniform' (constant t), 'vertical' (sky far), 'smooth' (low-frequency noise),
    'image' (bright and high is far), 'mixed'; 'given' when a depth map is passed to ``degrade``."""
    airlight_variation: float | None = None
    """Relative spatial variation of A, 0..0.3."""
    depth_edges: bool | None = None
    """Snap a random depth map to the image's edges (guided filter), as real depth has object boundaries."""

    def __post_init__(self) -> None:
        _check_range("HazeParams", "transmission", self.transmission, 0.01, 1.0)
        _check_colour("HazeParams", "atmospheric_light", self.atmospheric_light)
        _check_choice("HazeParams", "depth_model", self.depth_model, DEPTH_MODELS)
        _check_range("HazeParams", "airlight_variation", self.airlight_variation, 0.0, 0.3)
        if self.depth_edges is not None and not isinstance(self.depth_edges, bool):
            raise DegradeError(f"HazeParams.depth_edges: expected True, False or None, got {self.depth_edges!r}")
        if self.atmospheric_light is not None:
            object.__setattr__(self, "atmospheric_light", tuple(float(v) for v in self.atmospheric_light))


@dataclass(frozen=True)
class RainParams:
    """Rain streaks in several layers in front of the scene."""

    density: float | None = None
    """Target opacity-weighted fraction of the image covered by streaks, 0..0.5."""
    angle_deg: float | None = None
    """Main streak direction in degrees from vertical, -80..80, positive leaning right at the top."""
    angle_spread_deg: float | None = None
    """Standard deviation of single streak directions around the layer angle, 0..45 degrees."""
    length_px: float | None = None
    """Mean streak length in pixels, 2..1000."""
    width_px: float | None = None
    """Mean streak width (full width at half maximum) in pixels, 1..4."""
    layers: int | None = None
    """Number of streak layers at different distances, 1..4."""
    opacity: float | None = None
    """Peak opacity of a streak, 0.05..1."""
    blend: str | None = None
    """How streaks combine with the scene: 'screen', 'add' or 'over'."""
    colour: tuple[float, float, float] | None = None
    """Streak colour (RGB, 0..1), near white."""
    softness_px: float | None = None
    """Extra gaussian blur of the streaks (out of focus, motion), sigma in pixels 0..3."""

    def __post_init__(self) -> None:
        _check_range("RainParams", "density", self.density, 0.0, 0.5)
        _check_range("RainParams", "angle_deg", self.angle_deg, -80.0, 80.0, " degrees")
        _check_range("RainParams", "angle_spread_deg", self.angle_spread_deg, 0.0, 45.0, " degrees")
        _check_range("RainParams", "length_px", self.length_px, 2.0, 1000.0, " px")
        _check_range("RainParams", "width_px", self.width_px, 1.0, 4.0, " px")
        if self.layers is not None and (isinstance(self.layers, bool) or self.layers not in (1, 2, 3, 4)):
            raise DegradeError(f"RainParams.layers: expected an integer 1..4, got {self.layers!r}")
        _check_range("RainParams", "opacity", self.opacity, 0.05, 1.0)
        _check_choice("RainParams", "blend", self.blend, RAIN_BLENDS)
        _check_colour("RainParams", "colour", self.colour)
        _check_range("RainParams", "softness_px", self.softness_px, 0.0, 3.0, " px")
        if self.colour is not None:
            object.__setattr__(self, "colour", tuple(float(v) for v in self.colour))


@dataclass(frozen=True)
class NoiseParams:
    """Sensor noise with variance sigma^2 * ((1 - f) + 2 f x) at intensity x (f = ``poisson_fraction``).

    At mid-grey (x = 0.5) the standard deviation is exactly ``sigma_255`` / 255, whatever the mix.
    """

    sigma_255: float | None = None
    """Noise standard deviation at mid-grey in 0..255 units, 0..128."""
    kind: str | None = None
    """'gaussian' or 'poisson': the dominant part (decides ``poisson_fraction`` when that is None)."""
    poisson_fraction: float | None = None
    """Share of the variance at mid-grey that is signal-dependent (shot noise), 0..1."""
    channel_correlation: float | None = None
    """Correlation of the noise between R, G and B (luminance noise), 0..1."""
    spatial_sigma_px: float | None = None
    """Gaussian correlation length of the noise in pixels (0 = white), 0..2."""
    domain: str | None = None
    """'srgb': the variance model holds for image values; 'linear': it holds in linear light (x^2.2), as
    on a sensor, so that read noise is amplified in the shadows by the display gamma. Either way the std
    at mid-grey is ``sigma_255`` (to first order for 'linear')."""

    def __post_init__(self) -> None:
        _check_range("NoiseParams", "sigma_255", self.sigma_255, 0.0, 128.0, " (0..255 units)")
        _check_choice("NoiseParams", "kind", self.kind, NOISE_KINDS)
        _check_range("NoiseParams", "poisson_fraction", self.poisson_fraction, 0.0, 1.0)
        _check_range("NoiseParams", "channel_correlation", self.channel_correlation, 0.0, 1.0)
        _check_range("NoiseParams", "spatial_sigma_px", self.spatial_sigma_px, 0.0, 2.0, " px")
        _check_choice("NoiseParams", "domain", self.domain, NOISE_DOMAINS)
        if self.kind is not None and self.poisson_fraction is not None:
            dominant = "poisson" if self.poisson_fraction > 0.5 else "gaussian"
            if dominant != self.kind:
                raise DegradeError(f"NoiseParams: kind {self.kind!r} contradicts poisson_fraction "
                                   f"{self.poisson_fraction!r}; the kind is 'poisson' exactly when the fraction "
                                   "is above 0.5. Give only one of them.")


@dataclass(frozen=True)
class BlurParams:
    """Camera or lens blur by a per-image kernel.

    ``extent_px`` is the calibration's extent: motion length (for a shake trajectory sqrt(12) times the
    standard deviation along its principal axis, which is the length of a straight line), defocus
    diameter, or 4 * sigma of a gaussian.
    """

    kind: str | None = None
    extent_px: float | None = None
    """Blur extent in pixels, 0..200."""
    angle_deg: float | None = None
    """Motion direction in degrees from horizontal, 0..180 (counter-clockwise on screen)."""
    path: str | None = None
    """Motion path: 'linear' (a straight line) or 'shake' (a random camera-shake trajectory)."""
    variation: float | None = None
    """Relative spread of the blur across the image, 0..0.8 (depth of field, partly moving scenes): the
    extent drifts smoothly between (1 - v/2) and (1 + v/2) times ``extent_px``, averaging ``extent_px``."""
    linear_light: bool | None = None
    """Blur in linear light (x^2.2) as a real exposure integrates it, so highlights smear into bright
    streaks; False blurs the image values directly."""

    def __post_init__(self) -> None:
        _check_choice("BlurParams", "kind", self.kind, BLUR_KINDS)
        _check_range("BlurParams", "extent_px", self.extent_px, 0.0, 200.0, " px")
        _check_range("BlurParams", "angle_deg", self.angle_deg, 0.0, 180.0, " degrees")
        _check_choice("BlurParams", "path", self.path, MOTION_PATHS)
        _check_range("BlurParams", "variation", self.variation, 0.0, 0.8)
        if self.linear_light is not None and not isinstance(self.linear_light, bool):
            raise DegradeError(f"BlurParams.linear_light: expected True, False or None, got {self.linear_light!r}")


@dataclass(frozen=True)
class AppliedParams:
    """The fully resolved parameters applied to one image (None for an absent degradation)."""

    haze: HazeParams | None = None
    rain: RainParams | None = None
    noise: NoiseParams | None = None
    blur: BlurParams | None = None
