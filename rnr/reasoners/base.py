"""The Reasoner protocol every reasoner backend implements."""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import torch

from ..diagnosis import Diagnosis

Progress = Callable[[int, int], None]
"""``progress(done, total)``; it may raise :class:`rnr.errors.Interrupted` to stop the work."""


@runtime_checkable
class Reasoner(Protocol):
    """Looks at images and writes one :class:`Diagnosis` per image."""

    name: str

    def diagnose(self, images: torch.Tensor, progress: Progress | None = None) -> list[Diagnosis]:
        """Diagnose a batch: ``images`` is float [B,3,H,W] in 0..1 on any device."""
        ...
