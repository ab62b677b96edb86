"""Diagnosis <-> JSON with strict, path-naming validation.

``from_dict`` accepts exactly what :func:`rnr.diagnosis.schema.json_schema` describes: unknown fields,
wrong types and out-of-range values raise :class:`~rnr.errors.DiagnosisError` with the field path.
Physical parameters, ``scene``, ``reasoning``, ``order``, ``source`` and ``version`` may be omitted
(defaults apply); each degradation's ``present`` is required, and ``severity`` is required when present.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import DiagnosisError
from .calibration import DEGRADATIONS
from .model import RECORD_TYPES, SCHEMA_VERSION, Blur, Diagnosis, Haze, Noise, Rain

_RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "haze": ("present", "severity", "atmospheric_light", "transmission", "transmission_map"),
    "rain": ("present", "severity", "density", "angle_deg", "length_px"),
    "noise": ("present", "severity", "sigma_255", "kind"),
    "blur": ("present", "severity", "kind", "extent_px", "angle_deg"),
}
_TOP_FIELDS = ("version", *DEGRADATIONS, "scene", "order", "reasoning", "source")


def to_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    """A plain JSON-ready dict, keys in a stable order."""
    out: dict[str, Any] = {"version": diagnosis.version}
    for name in DEGRADATIONS:
        record = getattr(diagnosis, name)
        item: dict[str, Any] = {}
        for key in _RECORD_FIELDS[name]:
            value = getattr(record, key)
            if isinstance(value, tuple):
                value = [list(row) if isinstance(row, tuple) else row for row in value]
            item[key] = value
        out[name] = item
    out["scene"] = diagnosis.scene
    out["order"] = list(diagnosis.order)
    out["reasoning"] = diagnosis.reasoning
    out["source"] = diagnosis.source
    return out


def to_json(diagnosis: Diagnosis, indent: int | None = 2) -> str:
    return json.dumps(to_dict(diagnosis), indent=indent, ensure_ascii=False)


def _expect_type(path: str, value: object, kind: str) -> None:
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "list": isinstance(value, list),
        "object": isinstance(value, dict),
    }[kind]
    if not ok:
        words = {"bool": "true or false", "int": "an integer", "number": "a number", "string": "a string",
                 "list": "a list", "object": "an object"}
        raise DiagnosisError(path, words[kind], value)
    if kind == "number" and not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise DiagnosisError(path, "a finite number", value)


_FIELD_KINDS: dict[str, str] = {
    "present": "bool", "severity": "int", "transmission": "number", "density": "number",
    "angle_deg": "number", "length_px": "number", "sigma_255": "number", "kind": "string",
    "extent_px": "number", "atmospheric_light": "list",
}


def _record_from_dict(name: str, data: object) -> Any:
    _expect_type(name, data, "object")
    assert isinstance(data, dict)
    allowed = _RECORD_FIELDS[name]
    for key in data:
        if key not in allowed:
            raise DiagnosisError(f"{name}.{key}", "no such field; allowed: " + ", ".join(allowed), data[key])
    if "present" not in data:
        raise DiagnosisError(f"{name}.present", "true or false (required)", None)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{name}.{key}"
        if key == "transmission_map":
            if value is None:
                continue
            _expect_type(path, value, "list")
            for r, row in enumerate(value):
                _expect_type(f"{path}[{r}]", row, "list")
                for c, cell in enumerate(row):
                    _expect_type(f"{path}[{r}][{c}]", cell, "number")
            kwargs[key] = tuple(tuple(float(v) for v in row) for row in value)
            continue
        kind = _FIELD_KINDS[key]
        if key == "severity" and isinstance(value, float) and value.is_integer():
            value = int(value)
        _expect_type(path, value, kind)
        if key == "atmospheric_light":
            if len(value) != 3:
                raise DiagnosisError(path, "3 numbers (R, G, B) in [0, 1]", value)
            for i, v in enumerate(value):
                _expect_type(f"{path}[{i}]", v, "number")
            value = tuple(float(v) for v in value)
        kwargs[key] = value
    if kwargs["present"] is True and "severity" not in kwargs:
        raise DiagnosisError(f"{name}.severity", "an integer 1..100 (required when present is true)", None)
    kwargs.setdefault("severity", 0)
    return RECORD_TYPES[name](**kwargs)


def from_dict(data: object) -> Diagnosis:
    """Build a validated Diagnosis from a parsed JSON object."""
    _expect_type("$", data, "object")
    assert isinstance(data, dict)
    for key in data:
        if key not in _TOP_FIELDS:
            raise DiagnosisError(key, "no such field; allowed: " + ", ".join(_TOP_FIELDS), data[key])
    version = data.get("version", SCHEMA_VERSION)
    _expect_type("version", version, "string")
    missing = [name for name in DEGRADATIONS if name not in data]
    if missing:
        raise DiagnosisError(missing[0], "an object with at least 'present' (required field)", None)
    records = {name: _record_from_dict(name, data[name]) for name in DEGRADATIONS}
    order = data.get("order", [])
    _expect_type("order", order, "list")
    for i, item in enumerate(order):
        _expect_type(f"order[{i}]", item, "string")
    for key in ("scene", "reasoning", "source"):
        if key in data:
            _expect_type(key, data[key], "string")
    return Diagnosis(
        haze=records["haze"], rain=records["rain"], noise=records["noise"], blur=records["blur"],
        scene=data.get("scene", ""), reasoning=data.get("reasoning", ""), order=tuple(order),
        source=data.get("source", ""), version=version,
    )


def from_json(text: str | bytes) -> Diagnosis:
    """Parse and validate Diagnosis JSON text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise DiagnosisError("$", "JSON text (a string)", text)
    if not text.strip():
        raise DiagnosisError("$", "a JSON object", text, "The text is empty; paste the Diagnosis JSON.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DiagnosisError("$", "valid JSON", text[max(0, exc.pos - 20): exc.pos + 20],
                             f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    return from_dict(data)


__all__ = ["to_dict", "to_json", "from_dict", "from_json", "Haze", "Rain", "Noise", "Blur"]
