"""The typed, frozen, versioned Diagnosis: what a reasoner found and what a restorer must do.

All four degradation records share ``present`` and ``severity`` (0 when absent, 1..100 when present,
on the scale of :mod:`rnr.diagnosis.calibration`) and carry their physical parameters with units in
their names. Construction validates every field and raises :class:`~rnr.errors.DiagnosisError` naming
the field path, so an invalid Diagnosis cannot exist.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Literal

from ..errors import DiagnosisError
from .calibration import DEFAULT_ORDER, DEGRADATIONS, combined_severity

SCHEMA_VERSION = "1.0"
MAX_TRANSMISSION_MAP_SIDE = 64
MAX_SCENE_CHARS = 500
MAX_REASONING_CHARS = 20000

NoiseKind = Literal["gaussian", "poisson"]
BlurKind = Literal["motion", "defocus", "gaussian"]
NOISE_KINDS: tuple[str, ...] = ("gaussian", "poisson")
BLUR_KINDS: tuple[str, ...] = ("motion", "defocus", "gaussian")

# The scene text describes content only, so a text-conditioned restorer is never told to paint the
# degradation back in. These words (and their forms) name a degradation.
_DEGRADATION_WORD_RE = re.compile(
    r"\b(fog\w*|haz(e|y|ier|iest|iness)|mist\w*|smog\w*|rain\w*|drizzl\w*|downpour\w*|streak\w*|"
    r"nois\w*|grain\w*|blur\w*|out[- ]of[- ]focus|defocus\w*|motion[- ]blur\w*|shak\w*|degrad\w*|"
    r"low[- ]visibility)\b",
    re.IGNORECASE,
)


def degradation_words_in(text: str) -> list[str]:
    """The degradation-naming words found in ``text`` (empty when the text is clean)."""
    return [match.group(0) for match in _DEGRADATION_WORD_RE.finditer(text)]


def _check_number(path: str, value: object, low: float, high: float, unit: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DiagnosisError(path, f"a finite number in [{low}, {high}]{unit}", value)
    if not low <= value <= high:
        raise DiagnosisError(path, f"a number in [{low}, {high}]{unit}", value)
    return float(value)


def _check_presence(path: str, present: object, severity: object) -> None:
    if not isinstance(present, bool):
        raise DiagnosisError(f"{path}.present", "true or false", present)
    if isinstance(severity, bool) or not isinstance(severity, int):
        raise DiagnosisError(f"{path}.severity", "an integer (0 when absent, 1..100 when present)", severity)
    if present and not 1 <= severity <= 100:
        raise DiagnosisError(f"{path}.severity", "an integer 1..100 because present is true", severity,
                             "Set present to false for severity 0.")
    if not present and severity != 0:
        raise DiagnosisError(f"{path}.severity", "0 because present is false", severity,
                             "Set present to true to keep a non-zero severity.")


@dataclass(frozen=True)
class Haze:
    """Haze or fog, by the scattering model I = J*t + A*(1-t)."""

    present: bool = False
    severity: int = 0
    atmospheric_light: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """A: RGB colour of the airlight, each channel 0..1."""
    transmission: float = 1.0
    """Mean transmission t over the image, 0..1 (1 = clear air)."""
    transmission_map: tuple[tuple[float, ...], ...] | None = None
    """Optional coarse transmission map (rows of values 0..1, at most 64x64), top row first."""

    def __post_init__(self) -> None:
        _check_presence("haze", self.present, self.severity)
        light = self.atmospheric_light
        if not isinstance(light, (tuple, list)) or len(light) != 3:
            raise DiagnosisError("haze.atmospheric_light", "3 numbers (R, G, B) in [0, 1]", light)
        object.__setattr__(self, "atmospheric_light",
                           tuple(_check_number(f"haze.atmospheric_light[{i}]", v, 0.0, 1.0) for i, v in enumerate(light)))
        object.__setattr__(self, "transmission", _check_number("haze.transmission", self.transmission, 0.0, 1.0))
        if self.transmission_map is not None:
            object.__setattr__(self, "transmission_map", _check_map(self.transmission_map))


def _check_map(rows: object) -> tuple[tuple[float, ...], ...]:
    path = "haze.transmission_map"
    if not isinstance(rows, (tuple, list)) or not 1 <= len(rows) <= MAX_TRANSMISSION_MAP_SIDE:
        raise DiagnosisError(path, f"null or a list of 1..{MAX_TRANSMISSION_MAP_SIDE} rows", rows)
    width = None
    checked = []
    for r, row in enumerate(rows):
        if not isinstance(row, (tuple, list)) or not 1 <= len(row) <= MAX_TRANSMISSION_MAP_SIDE:
            raise DiagnosisError(f"{path}[{r}]", f"a row of 1..{MAX_TRANSMISSION_MAP_SIDE} numbers", row)
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise DiagnosisError(f"{path}[{r}]", f"a row of {width} numbers like row 0", f"{len(row)} numbers")
        checked.append(tuple(_check_number(f"{path}[{r}][{c}]", v, 0.0, 1.0) for c, v in enumerate(row)))
    return tuple(checked)


@dataclass(frozen=True)
class Rain:
    """Rain streaks in front of the scene."""

    present: bool = False
    severity: int = 0
    density: float = 0.0
    """Opacity-weighted fraction of the image area covered by streaks, 0..1."""
    angle_deg: float = 0.0
    """Streak direction in degrees from vertical, -90..90, positive leaning right at the top."""
    length_px: float = 0.0
    """Typical streak length in pixels."""

    def __post_init__(self) -> None:
        _check_presence("rain", self.present, self.severity)
        object.__setattr__(self, "density", _check_number("rain.density", self.density, 0.0, 1.0))
        object.__setattr__(self, "angle_deg", _check_number("rain.angle_deg", self.angle_deg, -90.0, 90.0, " degrees"))
        object.__setattr__(self, "length_px", _check_number("rain.length_px", self.length_px, 0.0, 10000.0, " px"))


@dataclass(frozen=True)
class Noise:
    """Sensor noise."""

    present: bool = False
    severity: int = 0
    sigma_255: float = 0.0
    """Noise standard deviation in 0..255 units (poisson: the std at mid-grey)."""
    kind: NoiseKind = "gaussian"

    def __post_init__(self) -> None:
        _check_presence("noise", self.present, self.severity)
        object.__setattr__(self, "sigma_255", _check_number("noise.sigma_255", self.sigma_255, 0.0, 255.0, " (0..255 units)"))
        if self.kind not in NOISE_KINDS:
            raise DiagnosisError("noise.kind", "one of " + ", ".join(repr(k) for k in NOISE_KINDS), self.kind)


@dataclass(frozen=True)
class Blur:
    """Camera or lens blur."""

    present: bool = False
    severity: int = 0
    kind: BlurKind = "gaussian"
    extent_px: float = 0.0
    """Blur extent in pixels: motion length, defocus diameter or 4*sigma of a gaussian."""
    angle_deg: float = 0.0
    """Motion direction in degrees from horizontal, 0..180 (unused for defocus and gaussian)."""

    def __post_init__(self) -> None:
        _check_presence("blur", self.present, self.severity)
        if self.kind not in BLUR_KINDS:
            raise DiagnosisError("blur.kind", "one of " + ", ".join(repr(k) for k in BLUR_KINDS), self.kind)
        object.__setattr__(self, "extent_px", _check_number("blur.extent_px", self.extent_px, 0.0, 1000.0, " px"))
        object.__setattr__(self, "angle_deg", _check_number("blur.angle_deg", self.angle_deg, 0.0, 180.0, " degrees"))


DegradationRecord = Haze | Rain | Noise | Blur
RECORD_TYPES: dict[str, type] = {"haze": Haze, "rain": Rain, "noise": Noise, "blur": Blur}


@dataclass(frozen=True)
class Diagnosis:
    """A structured diagnosis of one image.

    ``order`` lists present degradations in the order a restorer should remove them; present ones it
    leaves out follow in :data:`~rnr.diagnosis.calibration.DEFAULT_ORDER` (see :meth:`effective_order`).
    """

    haze: Haze = field(default_factory=Haze)
    rain: Rain = field(default_factory=Rain)
    noise: Noise = field(default_factory=Noise)
    blur: Blur = field(default_factory=Blur)
    scene: str = ""
    """What the photo shows; never names a degradation."""
    reasoning: str = ""
    """Free-text chain of thought that led to this diagnosis."""
    order: tuple[str, ...] = ()
    source: str = ""
    """Which reasoner wrote it (``"classic"``, ``"lite"``, ``"qwen3vl"``, ``"ground_truth"``, ``"edited"``)."""
    version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name, kind in RECORD_TYPES.items():
            if not isinstance(getattr(self, name), kind):
                raise DiagnosisError(name, f"a {kind.__name__} record", getattr(self, name))
        if not isinstance(self.scene, str) or len(self.scene) > MAX_SCENE_CHARS:
            raise DiagnosisError("scene", f"a string of at most {MAX_SCENE_CHARS} characters", self.scene)
        found = degradation_words_in(self.scene)
        if found:
            raise DiagnosisError("scene", "a description of the content that names no degradation", self.scene,
                                 f"Remove the word(s) {', '.join(repr(w) for w in found)}; degradations go in their own fields.")
        if not isinstance(self.reasoning, str) or len(self.reasoning) > MAX_REASONING_CHARS:
            raise DiagnosisError("reasoning", f"a string of at most {MAX_REASONING_CHARS} characters", self.reasoning)
        if not isinstance(self.source, str) or len(self.source) > 64:
            raise DiagnosisError("source", "a short string naming the reasoner", self.source)
        if self.version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise DiagnosisError("version", f"a {SCHEMA_VERSION.split('.')[0]}.x version", self.version,
                                 "This diagnosis was written by another release of ComfyUI-RnR; upgrade the pack.")
        if not isinstance(self.order, (tuple, list)):
            raise DiagnosisError("order", "a list of degradation names", self.order)
        seen: set[str] = set()
        for i, name in enumerate(self.order):
            if name not in DEGRADATIONS:
                raise DiagnosisError(f"order[{i}]", "one of " + ", ".join(repr(d) for d in DEGRADATIONS), name)
            if name in seen:
                raise DiagnosisError(f"order[{i}]", "each degradation at most once", name)
            if not getattr(self, name).present:
                raise DiagnosisError(f"order[{i}]", "a degradation whose present flag is true", name,
                                     f"Remove '{name}' from order or set {name}.present to true.")
            seen.add(name)
        object.__setattr__(self, "order", tuple(self.order))

    # ---- queries -------------------------------------------------------------------------------
    def record(self, name: str) -> DegradationRecord:
        """The record of one degradation by name (``"haze"``, ``"rain"``, ``"noise"``, ``"blur"``)."""
        if name not in DEGRADATIONS:
            raise DiagnosisError("name", "one of " + ", ".join(DEGRADATIONS), name)
        return getattr(self, name)

    @property
    def present(self) -> tuple[str, ...]:
        """Names of the present degradations, in :data:`DEGRADATIONS` order."""
        return tuple(name for name in DEGRADATIONS if getattr(self, name).present)

    def severities(self) -> dict[str, int]:
        """Severity 0..100 per degradation."""
        return {name: getattr(self, name).severity for name in DEGRADATIONS}

    def overall_severity(self) -> int:
        """Combined severity 0..100 (see :func:`~rnr.diagnosis.calibration.combined_severity`)."""
        return combined_severity(self.severities())

    def effective_order(self) -> tuple[str, ...]:
        """The order a restorer follows: ``order`` then any other present degradation in default order."""
        rest = [name for name in DEFAULT_ORDER if getattr(self, name).present and name not in self.order]
        return tuple(self.order) + tuple(rest)

    @property
    def is_clean(self) -> bool:
        return not self.present

    # ---- edits ---------------------------------------------------------------------------------
    def replace(self, **changes: object) -> "Diagnosis":
        """A copy with some top-level fields changed (validated like any Diagnosis)."""
        return dataclasses.replace(self, **changes)

    def with_degradation(self, name: str, *, present: bool | None = None, severity: int | None = None,
                         **params: object) -> "Diagnosis":
        """A copy with one degradation's presence, severity or physical parameters changed.

        Turning a degradation off sets its severity to 0 and drops it from ``order``; turning it on
        without a severity raises, since 0 is not a valid severity for a present degradation.
        """
        current = self.record(name)
        new_present = current.present if present is None else bool(present)
        if severity is None:
            new_severity = current.severity if new_present else 0
        else:
            new_severity = int(severity) if new_present else 0
        if new_present and severity is not None and severity <= 0:
            new_present, new_severity = False, 0
        record = dataclasses.replace(current, present=new_present, severity=new_severity, **params)
        order = tuple(n for n in self.order if n != name or record.present)
        return dataclasses.replace(self, **{name: record, "order": order})

    @classmethod
    def clean(cls, scene: str = "", source: str = "") -> "Diagnosis":
        """A diagnosis with no degradation present."""
        return cls(scene=scene, source=source)
