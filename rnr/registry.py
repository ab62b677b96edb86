"""Backends by name, and the options each one takes.

Adding a backend is one new module plus one line in a backend table below and its entry in the
options table. A backend module exposes ``load(spec: ModelSpec)`` returning a Reasoner or Restorer.
Modules are imported only when their backend is first used, so heavy optional dependencies
(transformers, diffusers) cost nothing to users of the built-in backends.

Options are declared here, in one place (``REASONER_OPTIONS`` / ``RESTORER_OPTIONS``): a name, a type
and the default the backend uses. A :class:`ModelSpec` checks and converts its options when it is
made, so every entry point (Python, the CLI, the loader nodes) refuses an unknown name or a value of
the wrong type with the same message, and the backends read values of the declared type. Options
equal to their default (or ``None``) are dropped, so equal settings give equal specs and share one
model in :mod:`rnr.cache`. ``docs/backend_options.md`` documents every option; a test keeps the
tables, the document and the backends' ``spec.option(...)`` reads in step.
"""

from __future__ import annotations

import difflib
import importlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import BackendError, OptionError

DOC = "docs/backend_options.md"

REASONER_BACKENDS: dict[str, str] = {
    "classic": "rnr.reasoners.classic",
    "lite": "rnr.reasoners.lite",
    "qwen3vl": "rnr.reasoners.qwen3vl",
}
RESTORER_BACKENDS: dict[str, str] = {
    "classic": "rnr.restorers.classic",
    "lite": "rnr.restorers.lite",
    "qwen_image_edit": "rnr.restorers.qwen_image_edit",
}
KINDS = {"reasoner": REASONER_BACKENDS, "restorer": RESTORER_BACKENDS}

OPTION_TYPES = ("bool", "int", "float", "text", "path", "json")


@dataclass(frozen=True)
class Option:
    """One backend option: its type and the value the backend uses when it is not given (``None``:
    the backend decides, see the document).

    Types: ``bool``; ``int``; ``float``; ``text``; ``path`` (text, '' means not set); ``json`` (a JSON
    object, held as canonical JSON text so that the spec stays hashable).
    """

    type: str
    default: Any = None

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise ValueError(f"option type must be one of {', '.join(OPTION_TYPES)}, got {self.type!r}")


REASONER_OPTIONS: dict[str, dict[str, Option]] = {
    "classic": {},
    "lite": {
        "crops": Option("int", 0),
    },
    "qwen3vl": {
        "adapter": Option("path"),
        "merge_adapter": Option("bool", True),
        "attn_implementation": Option("text", "sdpa"),
        "processor": Option("path"),
        "max_new_tokens": Option("int", 1024),
        "batch_size": Option("int", 4),
        "max_pixels": Option("int", 1024 * 1024),
        "temperature": Option("float", 0.0),
        "top_p": Option("float", 1.0),
        "seed": Option("int", 0),
        "reask": Option("bool", True),
        "system_prompt": Option("text"),
        "generate_options": Option("json"),
    },
}
RESTORER_OPTIONS: dict[str, dict[str, Option]] = {
    "classic": {
        "tile": Option("int", 1024),
        "max_untiled_pixels": Option("int", 2048 * 2048),
    },
    "lite": {
        "tile": Option("int", 1024),
        "overlap": Option("int", 256),
        "compile": Option("bool", False),
    },
    "qwen_image_edit": {
        "steps": Option("int"),
        "guidance": Option("float"),
        "negative_prompt": Option("text", " "),
        "max_megapixels": Option("float", 1.048576),
        "large": Option("text", "resize"),
        "tile": Option("int", 1024),
        "tile_overlap": Option("int", 128),
        "refine_strength": Option("float", 0.3),
        "strength_mode": Option("text", "blend"),
        "offload": Option("text", "none"),
        "vae_tiling": Option("bool", False),
        "lora": Option("path"),
        "lora_scale": Option("float", 1.0),
        "fuse_lora": Option("bool", False),
        "text_encoder": Option("path"),
        "transformer_file": Option("path"),
        "text_encoder_file": Option("path"),
        "vae_file": Option("path"),
        "variant": Option("text"),
        "config": Option("path"),
        "tokenizer": Option("path"),
    },
}
OPTIONS = {"reasoner": REASONER_OPTIONS, "restorer": RESTORER_OPTIONS}


def declared_options(kind: str, backend: str) -> dict[str, Option] | None:
    """The options a backend takes, by name; ``None`` for a backend registered without an options
    table (e.g. one a test adds), whose options are kept as given."""
    return OPTIONS.get(kind, {}).get(backend)


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_EXPECTED = {
    "bool": 'true or false (also "true"/"false", "yes"/"no", 1/0)',
    "int": "a whole number",
    "float": "a number",
    "text": "text (in quotes in JSON)",
    "path": "a file or folder path (text)",
    "json": 'a JSON object, as JSON text such as "{\\"key\\": 1}" (or an object)',
}


class _Refused(Exception):
    """A value that does not fit its option's type (the caller words the message)."""


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _Refused


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Refused
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = _as_float(value)
    if not number.is_integer():
        raise _Refused
    return int(number)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Refused
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        raise _Refused from None
    if not math.isfinite(number):  # NaN would make a spec unequal to itself: a cache miss every time
        raise _Refused
    return number


def _as_json(value: Any) -> str | None:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _Refused from None
    if not isinstance(value, dict):
        raise _Refused
    if not value:
        return None
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        raise _Refused from None


def _convert(option: Option, value: Any) -> Any:
    """``value`` as ``option``'s type (``None`` means not set); raises :class:`_Refused`."""
    if option.type == "bool":
        return _as_bool(value)
    if option.type == "int":
        return _as_int(value)
    if option.type == "float":
        return _as_float(value)
    if option.type == "json":
        return _as_json(value)
    if option.type == "path" and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise _Refused
    return None if option.type == "path" and not value.strip() else value


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _unknown(kind: str, backend: str, name: str, declared: dict[str, Option]) -> OptionError:
    label = f"{kind} '{backend}'"
    if not declared:
        return OptionError(f"{label} takes no options, got {name!r}; remove it (see {DOC})")
    close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return OptionError(f"{label} has no option {name!r}{hint}; its options are: {', '.join(declared)} (see {DOC})")


def check_options(kind: str, backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the backend's table, converted to the declared types, without the
    ones equal to their default or ``None`` (so equal settings give equal specs).

    Raises :class:`~rnr.errors.OptionError` naming the backend, the option and the value seen.
    """
    declared = declared_options(kind, backend)
    checked: dict[str, Any] = {}
    for name, value in options.items():
        if declared is None:
            try:
                hash(value)
            except TypeError:
                raise OptionError(f"{kind} '{backend}' option {name!r} must be a plain value (text, number, "
                                  f"true/false), got {_shown(value)}; pass lists and objects as JSON text") from None
            checked[name] = value
            continue
        if name not in declared:
            raise _unknown(kind, backend, name, declared)
        option = declared[name]
        if value is None:
            continue
        try:
            value = _convert(option, value)
        except _Refused:
            raise OptionError(f"{kind} '{backend}' option {name!r} takes {_EXPECTED[option.type]}, got "
                              f"{_shown(value)}; fix the value or leave the option out for its default "
                              f"(see {DOC})") from None
        if value is not None and value != option.default:
            checked[name] = value
    return checked


@dataclass(frozen=True)
class ModelSpec:
    """Everything that identifies one loaded model; equal specs share one loaded object.

    ``path`` is a local file or folder ('' for backends with built-in weights), ``device`` and
    ``dtype`` are names resolved by :mod:`rnr.devices` (``"auto"`` picks), ``options`` are the
    backend's options (see :func:`check_options`: checked, converted, defaults dropped) as sorted
    (key, value) pairs so that the spec stays hashable.
    """

    kind: str
    backend: str
    path: str = ""
    device: str = "auto"
    dtype: str = "auto"
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BackendError(f"model kind must be 'reasoner' or 'restorer', got {self.kind!r}")
        if self.backend not in KINDS[self.kind]:
            raise BackendError(
                f"unknown {self.kind} backend {self.backend!r}; available: {', '.join(available(self.kind))}")
        options = check_options(self.kind, self.backend, dict(self.options))
        object.__setattr__(self, "options", tuple(sorted(options.items())))

    @classmethod
    def make(cls, kind: str, backend: str, path: str = "", device: str = "auto", dtype: str = "auto",
             **options: Any) -> ModelSpec:
        return cls(kind, backend, str(path or ""), device, dtype, tuple(options.items()))

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


def available(kind: str) -> list[str]:
    """Backend names of one kind, in registry order."""
    return list(KINDS[kind])


def build(spec: ModelSpec) -> Any:
    """Load the model a spec names (no caching: use :func:`rnr.cache.get` for that)."""
    module_name = KINDS[spec.kind][spec.backend]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(
            f"the {spec.kind} backend {spec.backend!r} cannot be imported ({exc}). "
            f"Install its extra dependencies (see the README) or pick another backend: "
            f"{', '.join(available(spec.kind))}") from exc
    return module.load(spec)
