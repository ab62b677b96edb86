"""The JPEG crop pack: several corpus folders, the held-out split of the first kept, one loader for both formats."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.data.corpus import (
    CALIBRATION_PACKAGES,
    PACKAGE_SETS,
    PACKAGES,
    WIDE_PACKAGES,
)
from training.data.licences import (
    licence_from_gcompris_readme,
    licence_from_plain_gpl,
    licence_from_sklearn_readme,
)
from training.data.pack import (
    JPEG_FORMAT,
    load_packed,
    load_packed_crops,
    pack,
    random_crops,
    split_groups,
)
from training.data.rcc import read_rcc, unpack_rcc

SIZE = 32
QUIET = {"log": lambda *_: None}


def _photo(seed: int, width: int, height: int) -> Image.Image:
    """A smooth, photo-like colour image (low-frequency waves plus mild texture)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for c in range(3):
        fx, fy, phase = rng.uniform(0.01, 0.05), rng.uniform(0.01, 0.05), rng.uniform(0, 6.28)
        channels.append(128 + 70 * np.sin(fx * x + phase) * np.cos(fy * y + c) + rng.normal(0, 3, (height, width)))
    return Image.fromarray(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8))


def _corpus(folder: Path, prefix: str, groups: list[str], seed: int) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    photos = []
    for i, group in enumerate(groups):
        file = f"images/{prefix}{i}.png"
        _photo(seed + i, 160 + 16 * i, 128 + 8 * i).save(folder / file)
        photos.append({"id": f"{prefix}/photo{i}", "file": file, "group": f"{prefix}/{group}", "package": prefix,
                       "version": "1", "original_path": f"/usr/share/{prefix}/{i}.png", "license": "CC0-1.0",
                       "author": "X"})
    (folder / "manifest.json").write_text(json.dumps({"photos": photos, "packages": {}, "rejected": []}))
    (folder / "LICENSES.md").write_text(f"# {prefix} licences\n")


@pytest.fixture()
def corpora(tmp_path) -> tuple[Path, Path]:
    _corpus(tmp_path / "base", "a", ["g0", "g0", "g1", "g2", "g3", "g4"], seed=0)
    _corpus(tmp_path / "wide", "b", ["h0", "h1", "h2", "h3"], seed=100)
    return tmp_path / "base", tmp_path / "wide"


def _pack_jpeg(sources, out, max_mib=0.25, cap=6, seed=3):
    return pack(sources, out, size=SIZE, max_mib=max_mib, heldout_fraction=0.3, seed=seed, crops_per_photo=cap,
                min_short=64, max_short=120, fmt="jpeg", **QUIET)


def test_jpeg_pack_loads_close_to_the_raw_crops_and_is_deterministic(corpora, tmp_path):
    base, wide = corpora
    manifest = _pack_jpeg([base, wide], tmp_path / "j1")
    again = _pack_jpeg([base, wide], tmp_path / "j2")
    path = tmp_path / "j1" / f"crops_{SIZE}_jpeg.safetensors"
    assert manifest["format"] == JPEG_FORMAT and manifest["file"] == path.name
    assert path.read_bytes() == (tmp_path / "j2" / path.name).read_bytes() and manifest["sha256"] == again["sha256"]
    assert path.stat().st_size <= 0.25 * 2**20

    crops = load_packed_crops(path, "all")
    n = manifest["crops"]
    assert crops.shape == (n, 3, SIZE, SIZE) and crops.dtype == torch.uint8
    assert n == sum(p["crops"] for p in manifest["photos"]) == 10 * 6  # the cap, as the budget is large enough
    # Each decoded crop is the crop that random_crops cuts with the same seed, up to a small JPEG error.
    tensors = load_packed(path)
    photos = manifest["photos"]
    for index in (0, 7):
        photo = photos[index]
        prefix, name = photo["id"].split("/")
        folder = base if photo["source"] == str(base) else wide
        with Image.open(folder / "images" / f"{prefix}{name.removeprefix('photo')}.png") as image:
            raw, boxes = random_crops(image, photo["crops"], SIZE, np.random.default_rng([3, 3, index]), 64, 120)
        rows = np.flatnonzero(tensors["source_index"] == index)
        np.testing.assert_array_equal(tensors["boxes"][rows], boxes)
        decoded = crops[rows].permute(0, 2, 3, 1).numpy().astype(np.float32)
        assert np.abs(decoded - raw.astype(np.float32)).mean() < 3.0
        assert raw.std() > 10


def test_heldout_groups_come_from_the_first_corpus_only(corpora, tmp_path):
    base, wide = corpora
    alone = pack(base, tmp_path / "raw", size=SIZE, max_mib=0.25, heldout_fraction=0.3, seed=3,
                 min_short=64, max_short=120, **QUIET)
    both = _pack_jpeg([base, wide], tmp_path / "jpeg")
    held_alone = {p["group"] for p in alone["photos"] if p["split"] == "heldout"}
    held_both = {p["group"] for p in both["photos"] if p["split"] == "heldout"}
    assert held_alone == held_both == set(both["heldout_groups"]) == split_groups(
        ["a/g0", "a/g1", "a/g2", "a/g3", "a/g4"], 0.3, 3)
    assert len(held_both) == 2
    assert all(p["split"] == "train" for p in both["photos"] if p["source"] == str(wide))

    path = tmp_path / "jpeg" / f"crops_{SIZE}_jpeg.safetensors"
    train, held = load_packed_crops(path, "train"), load_packed_crops(path, "heldout")
    assert len(held) == both["crops_heldout"] == sum(p["crops"] for p in both["photos"] if p["split"] == "heldout")
    assert len(train) + len(held) == both["crops"]
    everything = load_packed_crops(path, "all")
    heldout_rows = torch.from_numpy(load_packed(path)["heldout"]).bool()
    assert torch.equal(everything[heldout_rows], held) and torch.equal(everything[~heldout_rows], train)
    assert (tmp_path / "jpeg" / "LICENSES.md").read_text() == "# a licences\n\n# b licences\n"
    with pytest.raises(ValueError, match="split"):
        load_packed_crops(path, "test")


def test_budget_spreads_crops_evenly_and_raw_format_loads_the_same_way(corpora, tmp_path):
    base, wide = corpora
    small = _pack_jpeg([base, wide], tmp_path / "small", max_mib=0.09, cap=24)
    counts = [p["crops"] for p in small["photos"]]
    assert small["bytes"] <= 0.09 * 2**20 and max(counts) - min(counts) <= 1 and min(counts) >= 1
    assert max(counts) < 24  # the size cap, not the per-photo cap, stopped it

    pack(base, tmp_path / "raw", size=SIZE, max_mib=0.25, heldout_fraction=0.3, seed=3, min_short=64,
         max_short=120, **QUIET)
    raw_path = tmp_path / "raw" / f"crops_{SIZE}.safetensors"
    images = load_packed(raw_path)["images"]
    loaded = load_packed_crops(raw_path, "all")
    assert loaded.dtype == torch.uint8 and torch.equal(loaded, torch.from_numpy(images).permute(0, 3, 1, 2))
    held = load_packed(raw_path)["heldout"].astype(bool)
    assert torch.equal(load_packed_crops(raw_path, "train"), torch.from_numpy(images[~held]).permute(0, 3, 1, 2))
    with pytest.raises(FileNotFoundError, match="corpus pack"):
        load_packed_crops(tmp_path / "missing.safetensors", "train")
    with pytest.raises(ValueError, match="both"):
        pack([base, base], tmp_path / "twice", size=SIZE, max_mib=0.25, fmt="jpeg", **QUIET)


def test_wide_set_licence_readers(tmp_path):
    readme = tmp_path / "README.txt"
    readme.write_text(
        "Image: china.jpg\nReleased under a creative commons license. [1]\nAttribution: by someone [2]\n"
        "[1] https://creativecommons.org/licenses/by/2.0/\n[2] https://www.flickr.com/photos/alice/\n"
        "[3] https://www.flickr.com/photos/alice/123/sizes/z/\n\n\n"
        "Image: flower.jpg\n[1] https://creativecommons.org/licenses/by-sa/2.0/\n"
        "[3] https://www.flickr.com/photos/bob/456/sizes/z/\n"
    )
    assert licence_from_sklearn_readme(readme, "china.jpg") == ("CC-BY-2.0", "alice (Flickr)")
    assert licence_from_sklearn_readme(readme, "flower.jpg") == ("CC-BY-SA-2.0", "bob (Flickr)")
    assert licence_from_sklearn_readme(readme, "other.jpg") is None
    gpl = ("Upstream Author:\n\n    Jane Doe <jane@example.org>\n\nCopyright:\n    (c) 2003 Jane Doe\n\nLicense:\n"
           "    This package is free software; you can redistribute it and/or modify\n    it under the terms of the "
           "GNU General Public License as published by\n    the Free Software Foundation; either version 2 of the "
           "License, or\n    (at your option) any later version.\n")
    assert licence_from_plain_gpl(gpl) == ("GPL-2+", "Jane Doe")
    assert licence_from_plain_gpl(gpl.replace("either version 2", "version 3")) is None


def test_wide_set_is_apart_from_training_and_calibration_packages_and_documented():
    wide = {spec.name for spec in WIDE_PACKAGES}
    assert PACKAGE_SETS["wide"] is WIDE_PACKAGES
    assert not wide & {spec.name for spec in PACKAGES} and not wide & {spec.name for spec in CALIBRATION_PACKAGES}
    licences = (Path(__file__).resolve().parents[2] / "training/data/LICENSES_wide.md").read_text(encoding="utf-8")
    assert all(f"| {name} |" in licences for name in wide)
    assert "--set wide --out data/corpus_wide" in licences


def _rcc(files: dict[str, bytes], compress: set[str]) -> bytes:
    """A version-2 Qt resource holding ``files`` (paths ``dir/name``, one directory level)."""
    names, payload, nodes = b"", b"", []

    def name(text: str) -> int:
        nonlocal names
        offset = len(names)
        names += struct.pack(">HI", len(text), 0) + text.encode("utf-16-be")
        return offset

    def data(path: str, blob: bytes) -> int:
        nonlocal payload
        offset = len(payload)
        if path in compress:
            blob = struct.pack(">I", len(blob)) + zlib.compress(blob)
        payload += struct.pack(">I", len(blob)) + blob
        return offset

    folders = sorted({p.split("/")[0] for p in files})
    nodes.append(struct.pack(">IHII", 0, 2, len(folders), 1) + b"\0" * 8)  # root
    first_file = 1 + len(folders)
    children = {f: sorted(p for p in files if p.startswith(f + "/")) for f in folders}
    for folder in folders:
        nodes.append(struct.pack(">IHII", name(folder), 2, len(children[folder]), first_file) + b"\0" * 8)
        first_file += len(children[folder])
    for folder in folders:
        for path in children[folder]:
            flags = 1 if path in compress else 0
            nodes.append(struct.pack(">IHHHI", name(path.split("/")[1]), flags, 0, 0, data(path, files[path])) + b"\0" * 8)
    tree = b"".join(nodes)
    header_size = 20
    return (b"qres" + struct.pack(">IIII", 2, header_size, header_size + len(tree), header_size + len(tree) + len(payload))
            + tree + payload + names)


def test_qt_resource_reader_and_gcompris_credits(tmp_path):
    files = {"res/a.txt": b"plain", "res/b.bin": bytes(range(256)) * 4, "z/c.txt": b"zzz"}
    blob = _rcc(files, compress={"res/b.bin"})
    assert dict(read_rcc(blob)) == {f"/{k}": v for k, v in files.items()}
    (tmp_path / "x.rcc").write_bytes(blob)
    written = unpack_rcc(tmp_path / "x.rcc", tmp_path / "x.rcc.d")
    assert (tmp_path / "x.rcc.d/res/b.bin").read_bytes() == files["res/b.bin"] and len(written) == 3
    with pytest.raises(ValueError, match="magic"):
        list(read_rcc(b"nope" + blob[4:]))

    readme = tmp_path / "README"
    readme.write_text(
        "Copyright: Someone, 2018\nLicense: CC-BY-SA 4.0\nFiles:\nkey.svg\nwonders/map.svg\n\n"
        "Copyright: © 2014 Jee & Rani\nSource: https://commons.wikimedia.org/wiki/File:X.jpg\n"
        "License: Public domain\nComments: cropping\nFiles: wonders/x.webp\n"
    )
    assert licence_from_gcompris_readme(readme, "wonders/x.webp") == (
        "public-domain", "Jee & Rani", "https://commons.wikimedia.org/wiki/File:X.jpg")
    assert licence_from_gcompris_readme(readme, "wonders/map.svg")[:2] == ("CC-BY-SA-4.0", "Someone, 2018")
    assert licence_from_gcompris_readme(readme, "wonders/y.webp") is None


def test_lite_training_batches_come_from_a_jpeg_pack(corpora, tmp_path):
    """The lite models train on the JPEG pack: training.lite.data reads it as it reads a raw pack."""
    from training.lite.data import SynthConfig, SynthStream, load_crops, synthesize

    _pack_jpeg(list(corpora), tmp_path / "j")
    path = tmp_path / "j" / f"crops_{SIZE}_jpeg.safetensors"
    pool = load_crops(path, "train")
    assert pool.dtype == torch.uint8 and pool.shape[1:] == (3, SIZE, SIZE)
    assert torch.equal(pool, load_packed_crops(path, "train"))
    config = SynthConfig(batch=3, crop=SIZE - 8)
    batch = synthesize(pool, 1, config)
    assert batch["degraded"].shape == (3, 3, SIZE - 8, SIZE - 8) and batch["target"].dtype == torch.uint8
    streamed = next(iter(SynthStream(path, config, base_seed=1)))
    assert torch.equal(streamed["degraded"], batch["degraded"])
