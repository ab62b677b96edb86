"""JSON Schema (draft 2020-12) of the Diagnosis JSON, for tools, prompts and other languages."""

from __future__ import annotations

from typing import Any

from .calibration import DEGRADATIONS
from .model import (BLUR_KINDS, MAX_REASONING_CHARS, MAX_SCENE_CHARS, MAX_TRANSMISSION_MAP_SIDE, NOISE_KINDS,
                    SCHEMA_VERSION)

_SEVERITY = {"type": "integer", "minimum": 0, "maximum": 100,
             "description": "0 when absent, 1..100 when present (see the calibration table)"}
_PRESENT = {"type": "boolean"}


def _number(low: float, high: float, description: str) -> dict[str, Any]:
    return {"type": "number", "minimum": low, "maximum": high, "description": description}


def _record(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["present"],
        "properties": {"present": _PRESENT, "severity": _SEVERITY, **properties},
        "allOf": [
            {"if": {"properties": {"present": {"const": True}}},
             "then": {"required": ["severity"], "properties": {"severity": {"minimum": 1}}}},
            {"if": {"properties": {"present": {"const": False}}},
             "then": {"properties": {"severity": {"const": 0}}}},
        ],
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema every Diagnosis JSON satisfies."""
    unit = _number(0.0, 1.0, "0..1")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "RnR Diagnosis",
        "description": f"Structured diagnosis of a degraded photo, schema version {SCHEMA_VERSION}.",
        "type": "object",
        "additionalProperties": False,
        "required": list(DEGRADATIONS),
        "properties": {
            "version": {"type": "string", "pattern": r"^" + SCHEMA_VERSION.split(".")[0] + r"\.\d+$"},
            "haze": _record({
                "atmospheric_light": {"type": "array", "items": unit, "minItems": 3, "maxItems": 3,
                                      "description": "airlight A, RGB 0..1"},
                "transmission": _number(0.0, 1.0, "mean transmission t, 1 = clear"),
                "transmission_map": {"oneOf": [{"type": "null"}, {
                    "type": "array", "minItems": 1, "maxItems": MAX_TRANSMISSION_MAP_SIDE,
                    "items": {"type": "array", "items": unit, "minItems": 1, "maxItems": MAX_TRANSMISSION_MAP_SIDE}}]},
            }),
            "rain": _record({
                "density": _number(0.0, 1.0, "opacity-weighted streak coverage of the image area"),
                "angle_deg": _number(-90.0, 90.0, "streak direction from vertical, degrees"),
                "length_px": _number(0.0, 10000.0, "typical streak length, pixels"),
            }),
            "noise": _record({
                "sigma_255": _number(0.0, 255.0, "noise std in 0..255 units"),
                "kind": {"enum": list(NOISE_KINDS)},
            }),
            "blur": _record({
                "kind": {"enum": list(BLUR_KINDS)},
                "extent_px": _number(0.0, 1000.0, "motion length, defocus diameter or 4*sigma, pixels"),
                "angle_deg": _number(0.0, 180.0, "motion direction from horizontal, degrees"),
            }),
            "scene": {"type": "string", "maxLength": MAX_SCENE_CHARS,
                      "description": "what the photo shows; never names a degradation"},
            "order": {"type": "array", "items": {"enum": list(DEGRADATIONS)}, "uniqueItems": True,
                      "description": "present degradations in the order to remove them"},
            "reasoning": {"type": "string", "maxLength": MAX_REASONING_CHARS},
            "source": {"type": "string", "maxLength": 64},
        },
    }
