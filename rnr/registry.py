"""Backends by name: adding a backend is one new module plus one line in a table below.

A backend module exposes ``load(spec: ModelSpec)`` returning a Reasoner or Restorer. Modules are
imported only when their backend is first used, so heavy optional dependencies (transformers,
diffusers) cost nothing to users of the built-in backends.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .errors import BackendError

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


@dataclass(frozen=True)
class ModelSpec:
    """Everything that identifies one loaded model; equal specs share one loaded object.

    ``path`` is a local file or folder ('' for backends with built-in weights), ``device`` and
    ``dtype`` are names resolved by :mod:`rnr.devices` (``"auto"`` picks), ``options`` are
    backend-specific (key, value) pairs kept sorted so that the spec stays hashable.
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
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))

    @classmethod
    def make(cls, kind: str, backend: str, path: str = "", device: str = "auto", dtype: str = "auto",
             **options: Any) -> "ModelSpec":
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
