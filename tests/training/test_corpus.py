"""The clean-photo corpus tools and the shipped sample photos; no apt or network needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rnr.assets import SAMPLES_DIR, sample_path, sample_paths
from rnr.errors import RnRError
from training.data.corpus import PACKAGES, SAMPLES, PackageSpec, list_candidates, looks_like_photo, photo_statistics
from training.data.licences import licence_from_dep5, licence_from_plasma_metadata, parse_dep5
from training.data.pack import crops_budget, load_packed, pack, split_groups

REPO = Path(__file__).resolve().parents[2]

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2014 Some Group
License: GPL-2+

Files: nature/Aqua.jpg
       nature/Garden.jpg
Copyright: 2008, Charles Barbin <cb@example.org>
License: GPL-2+
Comment: holders in AUTHORS

Files: 16.04/Bridge_by_Someone.jpg
Copyright: Someone Else, 2018
License: CC-BY-SA-4.0

Files: debian/*
Copyright: 2020, Packager
License: CC0-1.0
"""


def test_dep5_last_matching_paragraph_wins_and_basenames_match():
    paragraphs = parse_dep5(COPYRIGHT)
    assert [p.get("Files", "").split()[0] for p in paragraphs[1:]] == ["*", "nature/Aqua.jpg", "16.04/Bridge_by_Someone.jpg", "debian/*"]
    assert licence_from_dep5(COPYRIGHT, "/usr/share/backgrounds/mate/nature/Garden.jpg") == (
        "GPL-2+",
        "Charles Barbin <cb@example.org>",
    )
    # Installed flat as backgrounds/<name> although upstream keeps it under 16.04/.
    assert licence_from_dep5(COPYRIGHT, "/usr/share/backgrounds/Bridge_by_Someone.jpg") == ("CC-BY-SA-4.0", "Someone Else")
    assert licence_from_dep5(COPYRIGHT, "/usr/share/backgrounds/other.png") == ("GPL-2+", "Some Group")
    assert licence_from_dep5("Format: x\n\nFiles: a.png\nLicense: MIT\n", "/usr/share/b.png") is None


def test_plasma_metadata_licence(tmp_path):
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"KPlugin": {"License": "LGPLv3", "Authors": [{"Name": "A B"}, {"Name": "C"}]}}))
    assert licence_from_plasma_metadata(meta) == ("LGPL-3.0", "A B; C")
    assert licence_from_plasma_metadata(tmp_path / "missing.json") is None


def test_list_candidates_keeps_largest_resolution_and_groups_variants(tmp_path):
    for rel, size in [
        ("usr/share/wallpapers/Lake/contents/images/1280x1024.jpg", (40, 32)),
        ("usr/share/wallpapers/Lake/contents/images/2560x1600.jpg", (80, 50)),
        ("usr/share/wallpapers/Lake/contents/images_dark/1920x1080.jpg", (48, 27)),
        ("usr/share/wallpapers/Hill/contents/images/800x600.png", (40, 30)),
        ("usr/share/wallpapers/Hill/contents/screenshot.png", (10, 10)),
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (10, 20, 30)).save(tmp_path / rel)
    spec = PackageSpec("kde", ("usr/share/wallpapers/*/contents/images*/*",))
    cands = list_candidates(spec, "1.0", tmp_path)
    assert [(c.id, Path(c.original_path).name, c.group) for c in cands] == [
        ("kde/Hill", "800x600.png", "kde/Hill"),
        ("kde/Lake", "2560x1600.jpg", "kde/Lake"),
        ("kde/Lake-dark", "1920x1080.jpg", "kde/Lake"),
    ]


def _textured_photo(seed: int, width: int, height: int) -> Image.Image:
    """A camera-like image: smooth random shapes plus fine noise (no exact flat runs)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(height // 16 + 2, width // 16 + 2, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    noisy = base + rng.normal(0, 6, size=base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def test_photo_statistics_separate_texture_from_flat_art():
    photo = photo_statistics(_textured_photo(0, 640, 480))
    assert looks_like_photo(photo), photo
    assert photo["flat_fraction"] < 0.05
    art = np.zeros((480, 640, 3), np.uint8)
    art[:, :320] = (200, 40, 90)
    art[:, 320:] = (20, 120, 220)
    flat = photo_statistics(Image.fromarray(art))
    assert flat["flat_fraction"] > 0.9 and not looks_like_photo(flat)
    ramp = np.repeat(np.linspace(0, 255, 640, dtype=np.float32)[None, :, None], 480, 0).repeat(3, 2)
    assert not looks_like_photo(photo_statistics(Image.fromarray(ramp.astype(np.uint8))))
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    assert photo_statistics(rgba)["transparent_fraction"] == 1.0


def _write_corpus(folder: Path) -> dict:
    photos = []
    groups = ["p/a", "p/a", "p/b", "p/c", "p/d", "p/e"]
    for i, group in enumerate(groups):
        file = f"images/photo{i}.png"
        (folder / "images").mkdir(parents=True, exist_ok=True)
        _textured_photo(i, 200 + 20 * i, 150 + 10 * i).save(folder / file)
        photos.append(
            {"id": f"p/photo{i}", "file": file, "group": group, "package": "p", "version": "1",
             "original_path": f"/usr/share/p/{i}.png", "license": "CC0-1.0", "author": "X"}
        )
    manifest = {"photos": photos, "packages": {}, "rejected": []}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_pack_shapes_cap_split_and_determinism(tmp_path):
    _write_corpus(tmp_path / "corpus")
    cap_mib = 0.25
    m1 = pack(tmp_path / "corpus", tmp_path / "out1", size=32, max_mib=cap_mib, heldout_fraction=0.3,
              seed=7, min_short=64, max_short=120, log=lambda *_: None)
    m2 = pack(tmp_path / "corpus", tmp_path / "out2", size=32, max_mib=cap_mib, heldout_fraction=0.3,
              seed=7, min_short=64, max_short=120, log=lambda *_: None)
    path = tmp_path / "out1" / "crops_32.safetensors"
    assert path.stat().st_size <= cap_mib * 2**20
    assert path.read_bytes() == (tmp_path / "out2" / "crops_32.safetensors").read_bytes()
    assert m1["sha256"] == m2["sha256"]

    t = load_packed(path)
    n = t["images"].shape[0]
    assert n == sum(crops_budget(6, 32, cap_mib, None)) == m1["crops"]
    assert t["images"].shape == (n, 32, 32, 3) and t["images"].dtype == np.uint8
    assert t["source_index"].shape == (n,) and t["source_index"].dtype == np.int32
    assert set(t["source_index"].tolist()) == set(range(6))
    assert t["images"].std() > 10  # real content, not zeros

    # Held-out by source group: photos 0 and 1 share group p/a, so they are on the same side.
    split = {p["index"]: p["split"] for p in m1["photos"]}
    assert split[0] == split[1]
    train, held = load_packed(path, "train"), load_packed(path, "heldout")
    assert held["images"].shape[0] == m1["crops_heldout"] > 0
    assert train["images"].shape[0] + held["images"].shape[0] == n
    assert not set(train["source_index"].tolist()) & set(held["source_index"].tolist())
    groups = {p["index"]: p["group"] for p in m1["photos"]}
    assert not {groups[i] for i in train["source_index"].tolist()} & {groups[i] for i in held["source_index"].tolist()}
    with pytest.raises(ValueError, match="split"):
        load_packed(path, "test")


def test_split_groups_and_budget_limits():
    groups = [f"g{i}" for i in range(20)]
    held = split_groups(groups, 0.1, seed=0)
    assert len(held) == 2 and held == split_groups(groups, 0.1, seed=0)
    assert split_groups(["only"], 0.1, seed=0) == set()
    assert sum(crops_budget(10, 256, 48, None)) == 255
    assert crops_budget(3, 64, 1, 2) == [2, 2, 2]
    with pytest.raises(ValueError, match="max-mib"):
        crops_budget(100, 256, 1, None)


def test_shipped_samples_exist_are_small_and_licensed():
    paths = sample_paths()
    assert 2 <= len(paths) <= 4
    assert {p.stem for p in paths} == set(SAMPLES)
    total = sum(p.stat().st_size for p in paths)
    assert total < 600 * 1024
    licences = (SAMPLES_DIR.parent / "LICENSES.md").read_text(encoding="utf-8")
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and max(im.size) == 768
        assert p.name in licences
        assert SAMPLES[p.stem].split("/")[0] in licences  # its source package is named
    assert sample_path() == sample_path("landscape") == sample_path("landscape.jpg")
    with pytest.raises(RnRError, match="available"):
        sample_path("no-such-photo")


def test_corpus_licences_file_names_every_package():
    text = (REPO / "training" / "data" / "LICENSES.md").read_text(encoding="utf-8")
    for spec in PACKAGES:
        assert f"| {spec.name} |" in text


def test_kde_desktop_licence_and_calibration_set_apart(tmp_path):
    from training.data.corpus import CALIBRATION_PACKAGES
    from training.data.licences import licence_from_kde_desktop, resolve_licence

    collection = tmp_path / "usr/share/palapeli/collection"
    collection.mkdir(parents=True)
    (collection / "bee.desktop").write_text(
        "[Desktop Entry]\nName=Bee\nName[de]=Biene\nX-KDE-PluginInfo-Author=John Severns\n"
        "X-KDE-PluginInfo-License=Public Domain\n", encoding="utf-8")
    (collection / "bee.jpg").write_bytes(b"")
    assert licence_from_kde_desktop(collection / "bee.desktop") == ("public-domain", "John Severns")
    assert licence_from_kde_desktop(tmp_path / "missing.desktop") is None
    found = resolve_licence(tmp_path, "palapeli-data", "/usr/share/palapeli/collection/bee.jpg")
    assert (found.licence, found.author) == ("public-domain", "John Severns")
    assert found.source.endswith("bee.desktop (X-KDE-PluginInfo-License)")
    # Calibration photos never come from a training package (the training corpus and split stay as they are).
    assert {s.name for s in CALIBRATION_PACKAGES}.isdisjoint({s.name for s in PACKAGES})
    licences = (REPO / "training/data/LICENSES.md").read_text(encoding="utf-8")
    assert all(s.name in licences for s in CALIBRATION_PACKAGES)
