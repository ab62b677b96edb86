"""The committed pictures under docs/ were made with the default backends and weight files that ship now.

`scripts/make_pictures.py` records both in docs/strips/facts.json; when the default changes or the lite
weights are retrained, re-run it (`python scripts/make_pictures.py`) and commit docs/.
"""

from __future__ import annotations

import importlib.util
import json
import sys

from comfyui_harness import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def _make_pictures():
    spec = importlib.util.spec_from_file_location("rnr_make_pictures", REPO_ROOT / "scripts" / "make_pictures.py")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


def test_every_picture_is_there_and_small():
    pictures = _make_pictures()
    stems = sorted(p.stem for p in (REPO_ROOT / "workflows").glob("*.json"))
    assert sorted(p.stem for p in (DOCS / "workflows").glob("*.png")) == stems
    assert sorted(p.stem for p in (DOCS / "strips").glob("*.png")) == sorted(s.name for s in pictures.STRIPS)
    assert (DOCS / "icon.png").is_file()
    total = sum(p.stat().st_size for p in DOCS.rglob("*") if p.is_file())
    assert total < 5_000_000, f"docs/ holds {total / 1e6:.1f} MB"
    # The template browser's card pictures (python scripts/make_pictures.py --only workflows --thumbnails).
    thumbnails = sorted((REPO_ROOT / "workflows").glob("*.jpg"))
    assert [p.stem for p in thumbnails] == stems
    assert all(p.stat().st_size < 100_000 for p in thumbnails), [(p.name, p.stat().st_size) for p in thumbnails]


def test_strips_match_the_shipped_default_backends_and_weights():
    pictures = _make_pictures()
    recorded = json.loads((DOCS / "strips" / "facts.json").read_text(encoding="utf-8"))
    current = pictures.backend_state()
    assert {k: recorded[k] for k in current} == current, (
        "docs/strips were made with other default backends or weights; run `python scripts/make_pictures.py` "
        "and commit docs/")
    assert [s["type"] for s in recorded["strips"]] == [s.name for s in pictures.STRIPS]
