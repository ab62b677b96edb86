"""Editing a Diagnosis the way a user does: per-degradation presence and severity, scene text, order.

A severity override also moves the degradation's physical parameter to the value the calibration
(:mod:`rnr.diagnosis.calibration`) gives for that severity, so every restorer, whether it reads the
severity or the physical parameters, sees one consistent instruction. The Diagnosis Edit node and
scripts share this code.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from .diagnosis import DEGRADATIONS, Diagnosis
from .diagnosis import calibration as cal
from .errors import DiagnosisError

PRESENCE_CHOICES: tuple[str, ...] = ("keep", "on", "off")
KEEP_SEVERITY = -1

# Parameters a degradation gets when it is switched on in a diagnosis that had it absent (its
# severity parameter comes from the calibration); mid-range, direction-neutral values.
_TURN_ON_DEFAULTS: dict[str, dict[str, object]] = {
    "haze": {"atmospheric_light": (0.9, 0.9, 0.9)},
    "rain": {"angle_deg": 0.0, "length_px": 24.0},
    "noise": {"kind": "gaussian"},
    "blur": {"kind": "gaussian"},
}


def parse_order(text: str) -> tuple[str, ...]:
    """``"noise, blur -> haze"`` -> ``("noise", "blur", "haze")``; '' -> ``()``.

    Names are separated by commas, spaces, ``>`` or ``->``; each must be one of haze, rain, noise,
    blur, at most once.
    """
    names = [word.lower() for word in re.split(r"[\s,;>|]+|->", text or "") if word and word != "-"]
    for i, name in enumerate(names):
        if name not in DEGRADATIONS:
            raise DiagnosisError(f"order[{i}]", "one of " + ", ".join(DEGRADATIONS), name,
                                 "Write the order as names separated by commas, e.g. 'noise, blur, haze'.")
        if name in names[:i]:
            raise DiagnosisError(f"order[{i}]", "each degradation at most once", name)
    return tuple(names)


def _scaled_map(rows, old_transmission: float, new_transmission: float):
    """A transmission map rescaled so that its haze (1 - t) follows the new mean transmission."""
    if rows is None or old_transmission >= 1.0:
        return None
    factor = (1.0 - new_transmission) / (1.0 - old_transmission)
    return tuple(tuple(min(1.0, max(0.0, 1.0 - (1.0 - v) * factor)) for v in row) for row in rows)


def severity_parameters(diagnosis: Diagnosis, name: str, severity: int) -> dict[str, object]:
    """The physical parameters of ``name`` that correspond to ``severity`` on the shared scale."""
    if name == "haze":
        transmission = cal.transmission_from_severity(severity)
        return {"transmission": transmission,
                "transmission_map": _scaled_map(diagnosis.haze.transmission_map, diagnosis.haze.transmission,
                                                transmission)}
    if name == "rain":
        return {"density": cal.rain_density_from_severity(severity)}
    if name == "noise":
        return {"sigma_255": cal.noise_sigma_from_severity(severity)}
    return {"extent_px": cal.blur_extent_from_severity(severity)}


def _set(diagnosis: Diagnosis, name: str, present: bool, severity: int) -> Diagnosis:
    record = diagnosis.record(name)
    if not present:
        return diagnosis.with_degradation(name, present=False)
    params = severity_parameters(diagnosis, name, severity)
    if not record.present:
        params = {**_TURN_ON_DEFAULTS[name], **params}
    updated = dataclasses.replace(record, present=True, severity=int(severity), **params)
    return dataclasses.replace(diagnosis, **{name: updated})


def edit_diagnosis(diagnosis: Diagnosis, *, presence: Mapping[str, str] | None = None,
                   severity: Mapping[str, int] | None = None, scene: str | None = None,
                   order: Sequence[str] | str | None = None, source: str = "edited") -> Diagnosis:
    """A copy of ``diagnosis`` with the user's overrides applied.

    ``presence[name]``: ``"keep"``, ``"on"`` or ``"off"``. ``severity[name]``: -1 keeps it, 0 turns the
    degradation off, 1..100 sets it (and turns it on). Turning on a degradation the diagnosis lacks
    needs a severity. ``scene``: None keeps it. ``order``: None keeps it (minus degradations turned
    off); otherwise the names of present degradations in restoration order (names of degradations
    absent from this image are skipped). Invalid values raise :class:`DiagnosisError` naming the field.
    """
    presence = dict(presence or {})
    severity = dict(severity or {})
    for name in [*presence, *severity]:
        if name not in DEGRADATIONS:
            raise DiagnosisError(name, "one of " + ", ".join(DEGRADATIONS), name)
    edited = diagnosis
    for name in DEGRADATIONS:
        mode = presence.get(name, "keep")
        if mode not in PRESENCE_CHOICES:
            raise DiagnosisError(f"{name}.present", "one of " + ", ".join(PRESENCE_CHOICES), mode)
        wanted = severity.get(name, KEEP_SEVERITY)
        if isinstance(wanted, bool) or not isinstance(wanted, int) or not KEEP_SEVERITY <= wanted <= 100:
            raise DiagnosisError(f"{name}.severity", "an integer -1 (keep), 0 (off) or 1..100", wanted)
        record = edited.record(name)
        if mode == "off" or (mode == "keep" and wanted == 0):
            if record.present:
                edited = _set(edited, name, False, 0)
            continue
        if mode == "on" and wanted == 0:
            raise DiagnosisError(f"{name}.severity", "1..100 (or -1 to keep) because presence is 'on'", wanted,
                                 "Severity 0 means absent; set presence to 'off' instead.")
        if wanted == KEEP_SEVERITY:
            if mode == "on" and not record.present:
                raise DiagnosisError(f"{name}.severity", "a severity 1..100 to switch it on", wanted,
                                     f"This image has no {name}; say how strong it should be.")
            continue
        if record.present and record.severity == wanted:
            continue
        edited = _set(edited, name, True, wanted)
    changes: dict[str, object] = {}
    if scene is not None:
        changes["scene"] = scene.strip()
    if order is not None:
        names = parse_order(order) if isinstance(order, str) else tuple(order)
        changes["order"] = tuple(n for n in names if edited.record(n).present)
    if edited is not diagnosis or changes:
        changes["source"] = source
    return edited.replace(**changes) if changes else edited


__all__ = ["KEEP_SEVERITY", "PRESENCE_CHOICES", "edit_diagnosis", "parse_order", "severity_parameters"]
