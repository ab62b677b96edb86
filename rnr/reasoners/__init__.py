"""Reasoner backends: classic (no weights), lite (shipped weights), qwen3vl (transformers).

Backends register by name in :mod:`rnr.registry`; load them through :func:`rnr.cache.get`.
"""

from .base import Progress, Reasoner

__all__ = ["Progress", "Reasoner"]
