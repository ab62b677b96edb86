"""The process-wide model cache: one loaded object per :class:`~rnr.registry.ModelSpec`.

(First version: lazy, shared and thread-safe. The nodes work extends it with a memory budget, LRU
eviction, CPU offload and ComfyUI memory hooks.)
"""

from __future__ import annotations

import threading
from typing import Any

from . import registry
from .registry import ModelSpec

_lock = threading.Lock()
_models: dict[ModelSpec, Any] = {}


def get(spec: ModelSpec) -> Any:
    """The loaded model for ``spec``, loading it on first use; equal specs return the same object."""
    with _lock:
        model = _models.get(spec)
        if model is None:
            model = registry.build(spec)
            _models[spec] = model
        return model


def clear() -> None:
    """Forget every loaded model."""
    with _lock:
        _models.clear()
