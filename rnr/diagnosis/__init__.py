"""The Diagnosis contract: typed records, JSON (de)serialisation, JSON Schema, prompt text, calibration."""

from __future__ import annotations

from . import calibration
from .calibration import DEFAULT_ORDER, DEGRADATIONS, combined_severity, severity_word
from .model import (BLUR_KINDS, NOISE_KINDS, SCHEMA_VERSION, Blur, Diagnosis, Haze, Noise, Rain,
                    degradation_words_in)
from .schema import json_schema
from .serialize import from_dict, from_json, to_dict, to_json
from .text import to_prompt, to_report


def _to_json(self: Diagnosis, indent: int | None = 2) -> str:
    """This diagnosis as JSON text (see :func:`rnr.diagnosis.json_schema`)."""
    return to_json(self, indent)


def _to_dict(self: Diagnosis) -> dict:
    """This diagnosis as a plain dict."""
    return to_dict(self)


def _to_prompt(self: Diagnosis) -> str:
    """The restore instruction for a text-conditioned restorer."""
    return to_prompt(self)


def _to_report(self: Diagnosis) -> str:
    """A readable multi-line report."""
    return to_report(self)


# The dataclass lives in model.py; its text and JSON methods live beside the code they call so that
# each module stays one idea.
Diagnosis.to_json = _to_json  # type: ignore[attr-defined]
Diagnosis.to_dict = _to_dict  # type: ignore[attr-defined]
Diagnosis.to_prompt = _to_prompt  # type: ignore[attr-defined]
Diagnosis.to_report = _to_report  # type: ignore[attr-defined]
Diagnosis.from_json = staticmethod(from_json)  # type: ignore[attr-defined]
Diagnosis.from_dict = staticmethod(from_dict)  # type: ignore[attr-defined]
Diagnosis.json_schema = staticmethod(json_schema)  # type: ignore[attr-defined]

__all__ = [
    "BLUR_KINDS", "DEFAULT_ORDER", "DEGRADATIONS", "NOISE_KINDS", "SCHEMA_VERSION", "Blur", "Diagnosis", "Haze",
    "Noise", "Rain", "calibration", "combined_severity", "degradation_words_in", "from_dict", "from_json",
    "json_schema", "severity_word", "to_dict", "to_json", "to_prompt", "to_report",
]
