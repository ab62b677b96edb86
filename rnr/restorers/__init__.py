"""Restorer backends: classic (no weights), lite (shipped weights), qwen_image_edit (diffusers).

Backends register by name in :mod:`rnr.registry`; load them through :func:`rnr.cache.get`.
"""

from .base import Restorer

__all__ = ["Restorer"]
