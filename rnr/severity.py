"""SeverityScore: how degraded images look to a reasoner, and how much a restoration removed.

Works with any object that follows the :class:`~rnr.reasoners.base.Reasoner` protocol, so the same
scale (:mod:`rnr.diagnosis.calibration`) judges inputs and outputs whichever backend is used. A
degradation the reasoner does not flag counts as severity 0; the overall score combines the four by
:func:`~rnr.diagnosis.calibration.combined_severity`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .diagnosis import DEGRADATIONS, Diagnosis, combined_severity, severity_word
from .errors import ImageError
from .images import check_images
from .reasoners.base import Progress, Reasoner


@dataclass(frozen=True)
class SeverityReport:
    """Severities 0..100 of one image as judged by one reasoner."""

    severities: dict[str, int]
    """Severity per degradation (``haze``, ``rain``, ``noise``, ``blur``), 0 when not flagged."""
    overall: int
    """Combined severity 0..100."""
    diagnosis: Diagnosis
    """The full diagnosis the scores come from."""

    @classmethod
    def from_diagnosis(cls, diagnosis: Diagnosis) -> "SeverityReport":
        severities = diagnosis.severities()
        return cls(severities=severities, overall=combined_severity(severities), diagnosis=diagnosis)

    @property
    def source(self) -> str:
        return self.diagnosis.source

    def to_dict(self) -> dict:
        """``{"overall": int, "severities": {name: int}, "source": str}``."""
        return {"overall": self.overall, "severities": dict(self.severities), "source": self.source}

    def to_text(self) -> str:
        """One readable line, e.g. ``overall 58/100: haze 40 (moderate), noise 30 (moderate)``."""
        found = [f"{name} {value} ({severity_word(value)})" for name, value in self.severities.items() if value > 0]
        return f"overall {self.overall}/100: " + (", ".join(found) if found else "no degradation found")


@dataclass(frozen=True)
class SeverityDelta:
    """The severity change of one image from ``before`` (e.g. degraded) to ``after`` (e.g. restored)."""

    before: SeverityReport
    after: SeverityReport

    @property
    def reductions(self) -> dict[str, int]:
        """before - after per degradation (positive: the degradation got weaker)."""
        return {name: self.before.severities[name] - self.after.severities[name] for name in DEGRADATIONS}

    @property
    def reduction(self) -> int:
        """Overall before - after (positive: the image got cleaner)."""
        return self.before.overall - self.after.overall

    def to_dict(self) -> dict:
        return {"before": self.before.to_dict(), "after": self.after.to_dict(),
                "reductions": self.reductions, "reduction": self.reduction}

    def to_text(self) -> str:
        """A small table: before, after and reduction per degradation and overall."""
        lines = [f"{'':>8} {'before':>6} {'after':>6} {'change':>7}"]
        for name in DEGRADATIONS:
            b, a = self.before.severities[name], self.after.severities[name]
            lines.append(f"{name:>8} {b:6d} {a:6d} {a - b:+7d}")
        lines.append(f"{'overall':>8} {self.before.overall:6d} {self.after.overall:6d} "
                     f"{self.after.overall - self.before.overall:+7d}")
        verdict = ("cleaner" if self.reduction > 0 else "more degraded" if self.reduction < 0 else "unchanged")
        lines.append(f"Overall severity {self.before.overall} -> {self.after.overall}: {verdict} "
                     f"(reduction {self.reduction}).")
        return "\n".join(lines)


def _diagnose(images: torch.Tensor, reasoner: Reasoner, progress: Progress | None) -> list[Diagnosis]:
    diagnoses = reasoner.diagnose(images, progress=progress) if progress is not None else reasoner.diagnose(images)
    if len(diagnoses) != images.shape[0]:
        raise ImageError(f"the reasoner {getattr(reasoner, 'name', type(reasoner).__name__)!r} returned "
                         f"{len(diagnoses)} diagnoses for {images.shape[0]} images")
    return list(diagnoses)


def score(images: torch.Tensor, reasoner: Reasoner, progress: Progress | None = None) -> list[SeverityReport]:
    """A :class:`SeverityReport` per image of a batch [B,3,H,W] (or one [3,H,W] image) in 0..1."""
    images = check_images(images)
    return [SeverityReport.from_diagnosis(d) for d in _diagnose(images, reasoner, progress)]


def compare(before: torch.Tensor, after: torch.Tensor, reasoner: Reasoner,
            progress: Progress | None = None) -> list[SeverityDelta]:
    """Per image, the severity change from ``before`` to ``after`` (same batch size; sizes may differ)."""
    before = check_images(before, "before")
    after = check_images(after, "after")
    if before.shape[0] != after.shape[0]:
        raise ImageError(f"before has {before.shape[0]} images but after has {after.shape[0]}; "
                         "compare needs one 'after' image per 'before' image")
    if before.shape == after.shape:
        reports = score(torch.cat([before, after.to(before.device)]), reasoner, progress)
        half = before.shape[0]
        return [SeverityDelta(b, a) for b, a in zip(reports[:half], reports[half:])]
    return [SeverityDelta(b, a) for b, a in zip(score(before, reasoner, progress), score(after, reasoner, progress))]
