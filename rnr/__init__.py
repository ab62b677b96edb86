"""ComfyUI-RnR: Reason & Restore for photos hit by haze, rain, noise and blur.

The library never imports ComfyUI. Plain-Python entry points (``rnr.diagnose``, ``rnr.restore``,
``rnr.score``, ``rnr.degrade``) live in :mod:`rnr.api` and are imported on first use.
"""

from __future__ import annotations

from typing import Any

from .diagnosis import Diagnosis
from .errors import DiagnosisError, ImageError, Interrupted, ModelNotFoundError, RnRError

__version__ = "0.1.0"

_API = ("diagnose", "restore", "score", "compare", "degrade_image", "load_reasoner", "load_restorer", "run_pipeline")


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnr' has no attribute {name!r}")


__all__ = ["Diagnosis", "DiagnosisError", "ImageError", "Interrupted", "ModelNotFoundError", "RnRError",
           "__version__", *_API]
