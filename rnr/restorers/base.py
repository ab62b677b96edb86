"""The Restorer protocol every restorer backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..diagnosis import Diagnosis
from ..reasoners.base import Progress


@runtime_checkable
class Restorer(Protocol):
    """Restores images guided by their diagnoses."""

    name: str

    def restore(self, images: torch.Tensor, diagnoses: list[Diagnosis], *, strength: float = 1.0, seed: int = 0,
                progress: Progress | None = None) -> torch.Tensor:
        """Restore a batch: float [B,3,H,W] in 0..1 in, same shape, dtype and device out.

        ``diagnoses`` has one entry per image; ``strength`` 0 returns the input, 1 the full restoration.
        """
        ...
