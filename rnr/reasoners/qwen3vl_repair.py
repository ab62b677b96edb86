"""Field-level repair of a parsed model answer into what :func:`rnr.diagnosis.from_dict` accepts.

The syntax is already read (:mod:`.qwen3vl_parse`); here the values are fixed the way a careful
reader would: a wrapper object is unwrapped, field names are matched to the schema's (``sigma`` ->
``sigma_255``), ``"yes"``/``"no"`` become booleans, severities written as ``"60"``, ``"60/100"``,
``0.6`` or ``"moderate"`` become integers 0..100, out-of-range numbers are clamped, a degradation
the answer leaves out counts as absent, words that name a degradation are removed from the scene and
``order`` keeps only known, present degradations. When ``present`` and ``severity`` disagree the flag
wins; a present degradation without a severity takes the one its physical parameter implies.

What cannot be repaired is left for :func:`~rnr.diagnosis.from_dict` to reject with the field path.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..diagnosis import DEGRADATIONS, calibration, degradation_words_in
from ..diagnosis.model import MAX_SCENE_CHARS, MAX_TRANSMISSION_MAP_SIDE, SCHEMA_VERSION
from ..errors import DiagnosisError

_TOP_SYNONYMS = {
    "haze": "haze", "fog": "haze", "mist": "haze", "haze_fog": "haze", "dehaze": "haze",
    "rain": "rain", "rain_streaks": "rain", "rainstreaks": "rain", "derain": "rain",
    "noise": "noise", "sensor_noise": "noise", "grain": "noise", "denoise": "noise",
    "blur": "blur", "blurriness": "blur", "motion_blur": "blur", "deblur": "blur",
    "scene": "scene", "scene_description": "scene", "description": "scene", "content": "scene",
    "order": "order", "restoration_order": "order", "removal_order": "order",
    "reasoning": "reasoning", "version": "version",
}
_FIELD_SYNONYMS = {
    "present": "present", "is_present": "present", "detected": "present", "presence": "present",
    "severity": "severity", "severity_score": "severity", "level": "severity", "score": "severity",
    "atmospheric_light": "atmospheric_light", "airlight": "atmospheric_light", "a": "atmospheric_light",
    "atmospheric_light_rgb": "atmospheric_light",
    "transmission": "transmission", "t": "transmission", "mean_transmission": "transmission",
    "transmission_map": "transmission_map",
    "density": "density", "streak_density": "density", "coverage": "density",
    "angle_deg": "angle_deg", "angle": "angle_deg", "angle_degrees": "angle_deg", "direction": "angle_deg",
    "length_px": "length_px", "length": "length_px", "streak_length": "length_px", "length_pixels": "length_px",
    "sigma_255": "sigma_255", "sigma": "sigma_255", "sigma255": "sigma_255", "std": "sigma_255",
    "noise_sigma": "sigma_255", "stddev": "sigma_255",
    "kind": "kind", "type": "kind",
    "extent_px": "extent_px", "extent": "extent_px", "size_px": "extent_px", "kernel_size": "extent_px",
    "blur_extent": "extent_px",
}
_RECORD_FIELDS = {
    "haze": ("present", "severity", "atmospheric_light", "transmission", "transmission_map"),
    "rain": ("present", "severity", "density", "angle_deg", "length_px"),
    "noise": ("present", "severity", "sigma_255", "kind"),
    "blur": ("present", "severity", "kind", "extent_px", "angle_deg"),
}
_RANGES = {
    ("haze", "transmission"): (0.0, 1.0), ("rain", "density"): (0.0, 1.0),
    ("rain", "angle_deg"): (-90.0, 90.0), ("rain", "length_px"): (0.0, 10000.0),
    ("noise", "sigma_255"): (0.0, 255.0), ("blur", "extent_px"): (0.0, 1000.0), ("blur", "angle_deg"): (0.0, 180.0),
}
_UNIT_FRACTIONS = {("haze", "transmission"), ("rain", "density")}
_SEVERITY_WORDS = {"none": 0, "absent": 0, "no": 0, "light": 13, "mild": 13, "slight": 13, "low": 13,
                   "moderate": 38, "medium": 38, "strong": 63, "heavy": 63, "high": 63, "severe": 88,
                   "extreme": 88}
_TRUE_WORDS = {"true", "yes", "y", "present", "detected", "1", "on"}
_FALSE_WORDS = {"false", "no", "n", "absent", "none", "not present", "not detected", "0", "off", "null"}
_ORDER_WORDS = {
    "haze": "haze", "dehaze": "haze", "dehazing": "haze", "fog": "haze", "defog": "haze",
    "rain": "rain", "derain": "rain", "deraining": "rain", "rain_streaks": "rain", "streaks": "rain",
    "noise": "noise", "denoise": "noise", "denoising": "noise", "grain": "noise",
    "blur": "blur", "deblur": "blur", "deblurring": "blur", "sharpen": "blur", "sharpening": "blur",
}
_INTENSITY_WORDS = {"heavy", "light", "thick", "thin", "dense", "slight", "strong", "some", "visible", "mild",
                    "severe", "moderate", "bit", "of", "little", "lot", "much", "considerable"}
_DANGLING_WORDS = {"with", "and", "in", "by", "through", "under", "behind", "covered", "obscured", "plus", "or",
                   "of", "a", "an", "the"}


def _key(name: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _first_number(value: Any) -> float | None:
    """A finite number from a number or from the first number written in a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = re.search(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", value)
        if match:
            number = float(match.group(0))
            ratio = re.match(r"\s*/\s*(\d+(?:\.\d+)?)", value[match.end():])
            if ratio and float(ratio.group(1)) > 0:
                number = number / float(ratio.group(1)) * 100.0
            return number if math.isfinite(number) else None
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value > 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def _severity(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() in _SEVERITY_WORDS:
        return _SEVERITY_WORDS[value.strip().lower()]
    number = _first_number(value)
    if number is None:
        return None
    # A fraction like 0.6 is the 0..1 form of the 0..100 scale; integers stay as written.
    if 0.0 < number < 1.0:
        number *= 100.0
    return int(min(100, max(0, round(number))))


def _severity_from_parameter(name: str, record: dict[str, Any]) -> int:
    if name == "haze" and "transmission" in record:
        return calibration.severity_from_transmission(record["transmission"])
    if name == "rain" and "density" in record:
        return calibration.severity_from_rain_density(record["density"])
    if name == "noise" and "sigma_255" in record:
        return calibration.severity_from_noise_sigma(record["sigma_255"])
    if name == "blur" and "extent_px" in record:
        return calibration.severity_from_blur_extent(record["extent_px"])
    return 0


def _clamped(name: str, field: str, value: Any) -> float | None:
    number = _first_number(value)
    if number is None:
        return None
    low, high = _RANGES[(name, field)]
    # "64%" or 64 for a 0..1 quantity is a percentage; 1.7 is just out of range and is clamped.
    percent = isinstance(value, str) and "%" in value
    if (name, field) in _UNIT_FRACTIONS and 1.0 < number <= 100.0 and (percent or number >= 2.0):
        number /= 100.0
    if field == "angle_deg" and name == "blur":
        number %= 180.0
    return min(high, max(low, number))


def _light(value: Any) -> tuple[float, float, float] | None:
    if isinstance(value, str):
        numbers = [float(x) for x in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)", value)]
    elif isinstance(value, (list, tuple)):
        numbers = [n for n in (_first_number(v) for v in value) if n is not None]
    else:
        number = _first_number(value)
        numbers = [number] * 3 if number is not None else []
    if len(numbers) == 1:
        numbers = numbers * 3
    if len(numbers) != 3:
        return None
    if any(n > 1.0 for n in numbers) and all(n <= 255.0 for n in numbers):
        numbers = [n / 255.0 for n in numbers]
    return tuple(min(1.0, max(0.0, n)) for n in numbers)  # type: ignore[return-value]


def _transmission_map(value: Any) -> list[list[float]] | None:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TRANSMISSION_MAP_SIDE:
        return None
    rows = []
    for row in value:
        if not isinstance(row, list) or not 1 <= len(row) <= MAX_TRANSMISSION_MAP_SIDE:
            return None
        cells = [_first_number(v) for v in row]
        if any(c is None for c in cells):
            return None
        rows.append([min(1.0, max(0.0, c)) for c in cells])  # type: ignore[type-var]
    if len({len(r) for r in rows}) != 1:
        return None
    return rows


def _kind(name: str, value: Any) -> str | None:
    word = str(value).strip().lower()
    if name == "noise":
        if "poiss" in word or "shot" in word:
            return "poisson"
        if "gauss" in word or word in {"white", "sensor", "iso", "random", "normal"}:
            return "gaussian"
        return None
    if "motion" in word or "shake" in word or "camera" in word:
        return "motion"
    if "defocus" in word or "focus" in word or "lens" in word or "bokeh" in word:
        return "defocus"
    if "gauss" in word:
        return "gaussian"
    return None


def _record(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {"present": False, "severity": 0}
    if isinstance(value, bool):
        return {"present": True} if value else {"present": False, "severity": 0}
    if isinstance(value, str) and _bool(value) is not None and _first_number(value) is None:
        return {"present": True} if _bool(value) else {"present": False, "severity": 0}
    if isinstance(value, (int, float, str)):
        severity = _severity(value)
        if severity is None:
            raise DiagnosisError(name, "an object with present and severity", value)
        return {"present": severity > 0, "severity": severity}
    if not isinstance(value, dict):
        raise DiagnosisError(name, "an object with present and severity", value)
    record: dict[str, Any] = {}
    for raw_key, raw_value in value.items():
        field = _FIELD_SYNONYMS.get(_key(raw_key))
        if field is None or field not in _RECORD_FIELDS[name] or field in record:
            continue
        if field == "present":
            flag = _bool(raw_value)
            if flag is not None:
                record["present"] = flag
        elif field == "severity":
            severity = _severity(raw_value)
            if severity is not None:
                record["severity"] = severity
        elif field == "atmospheric_light":
            light = _light(raw_value)
            if light is not None:
                record[field] = list(light)
        elif field == "transmission_map":
            rows = _transmission_map(raw_value)
            if rows is not None:
                record[field] = rows
        elif field == "kind":
            kind = _kind(name, raw_value)
            if kind is not None:
                record[field] = kind
        else:
            number = _clamped(name, field, raw_value)
            if number is not None:
                record[field] = number
    return record


def _settle_presence(name: str, record: dict[str, Any]) -> dict[str, Any]:
    present, severity = record.get("present"), record.get("severity")
    if present is None:
        present = bool(severity) if severity is not None else _severity_from_parameter(name, record) > 0
    if not present:
        record["severity"] = 0
    elif not severity:
        derived = _severity_from_parameter(name, record)
        if derived > 0:
            record["severity"] = derived
        elif severity == 0:
            present, record["severity"] = False, 0
    record["present"] = bool(present)
    return record


def clean_scene(text: Any) -> str:
    """The scene with every degradation-naming word (and the intensity words before it) removed."""
    scene = " ".join(str(text).split()) if text is not None else ""
    if not degradation_words_in(scene):
        return scene[:MAX_SCENE_CHARS]
    clauses = re.split(r"([,;.])", scene)
    kept: list[str] = []
    for clause in clauses:
        if clause in {",", ";", "."}:
            kept.append(clause)
            continue
        words = clause.split()
        out: list[str] = []
        for word in words:
            bare = re.sub(r"[^\w\-]", "", word)
            if bare and degradation_words_in(bare):
                while out and re.sub(r"[^\w]", "", out[-1]).lower() in _INTENSITY_WORDS:
                    out.pop()
                continue
            out.append(word)
        while out and re.sub(r"[^\w]", "", out[-1]).lower() in _DANGLING_WORDS:
            out.pop()
        while out and re.sub(r"[^\w]", "", out[0]).lower() in {"and", "with", "or", "plus"}:
            out.pop(0)
        kept.append(" ".join(out))
    joined = "".join(part if part in {",", ";", "."} else (" " + part if part else "") for part in kept)
    joined = re.sub(r"\b(?:with|in|by|through|under|behind|of|covered|obscured)\s+(?=(?:and|or)\b)", "", joined)
    joined = re.sub(r"\s*([,;.])(\s*[,;.])+", r"\1", joined)
    joined = re.sub(r"\s+([,;.])", r"\1", joined).strip(" ,;")
    joined = joined[:1].upper() + joined[1:]
    if degradation_words_in(joined):
        return ""
    return joined[:MAX_SCENE_CHARS]


def _order(value: Any, present: set[str]) -> list[str]:
    if isinstance(value, str):
        items: list[Any] = re.split(r"\s*(?:->|=>|>|,|;|\||/|\bthen\b|\s)\s*", value.strip())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        return []
    order: list[str] = []
    for item in items:
        name = _ORDER_WORDS.get(_key(item))
        if name is None and isinstance(item, str):
            name = next((v for k, v in _ORDER_WORDS.items() if k in item.lower()), None)
        if name and name in present and name not in order:
            order.append(name)
    return order


def _unwrap(data: dict[str, Any]) -> dict[str, Any]:
    keys = {_TOP_SYNONYMS.get(_key(k)) for k in data}
    if keys & set(DEGRADATIONS):
        merged = dict(data)
        for key in ("degradations", "degradation", "findings"):
            inner = merged.pop(key, None)
            if isinstance(inner, dict):
                merged = {**inner, **merged}
        return merged
    for value in data.values():
        if isinstance(value, dict):
            inner = _unwrap(value)
            if {_TOP_SYNONYMS.get(_key(k)) for k in inner} & set(DEGRADATIONS):
                return {**{k: v for k, v in data.items() if not isinstance(v, dict)}, **inner}
    return data


def normalize(data: Any) -> dict[str, Any]:
    """A dict that :func:`~rnr.diagnosis.from_dict` accepts, or :class:`DiagnosisError` naming the field."""
    if not isinstance(data, dict):
        raise DiagnosisError("$", "a JSON object", data)
    data = _unwrap(data)
    by_name: dict[str, Any] = {}
    for raw_key, value in data.items():
        name = _TOP_SYNONYMS.get(_key(raw_key))
        if name is not None and name not in by_name:
            by_name[name] = value
    if not set(by_name) & set(DEGRADATIONS):
        raise DiagnosisError("$", "an object with the fields haze, rain, noise and blur", data)
    out: dict[str, Any] = {}
    for name in DEGRADATIONS:
        out[name] = _settle_presence(name, _record(name, by_name.get(name)))
    present = {name for name in DEGRADATIONS if out[name]["present"]}
    out["scene"] = clean_scene(by_name.get("scene", ""))
    out["order"] = _order(by_name.get("order", []), present)
    reasoning = by_name.get("reasoning")
    if isinstance(reasoning, str) and reasoning.strip():
        out["reasoning"] = reasoning.strip()
    version = by_name.get("version")
    if isinstance(version, str) and version.split(".")[0] == SCHEMA_VERSION.split(".")[0]:
        out["version"] = version
    return out
