"""Sample photos shipped with the pack (freely licensed; sources and licences in LICENSES.md here).

Used by ``rnr demo`` and the example workflows. Re-created from Debian packages by
``python -m training.data.corpus samples --src data/corpus --out rnr/assets/samples``.
"""

from __future__ import annotations

from pathlib import Path

from rnr.errors import RnRError

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
DEFAULT_SAMPLE = "landscape"


def sample_paths() -> list[Path]:
    """All shipped sample photos, sorted by file name."""
    return sorted(p for p in SAMPLES_DIR.glob("*.jpg") if p.is_file())


def sample_path(name: str | None = None) -> Path:
    """The sample photo called ``name`` (``"landscape"``, ``"building"``, ``"foliage"``; the file
    extension is optional); ``None`` gives the default sample, ``landscape``."""
    stem = Path(name or DEFAULT_SAMPLE).stem
    for path in sample_paths():
        if path.stem == stem:
            return path
    available = ", ".join(p.stem for p in sample_paths()) or "none"
    raise RnRError(
        f"no sample photo named {name!r} in {SAMPLES_DIR}; available: {available}. "
        "Pass one of those names, or None for the default."
    )
