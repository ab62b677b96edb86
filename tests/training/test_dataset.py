"""The labelled dataset: clean-photo sources and splits, reproducible examples, mixtures, fixed sets on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import save_file

from rnr.diagnosis import DEGRADATIONS
from rnr.reasoners.qwen3vl_parse import parse_answer
from training.config import TrainingError
from training.dataset import (
    CleanPhotos,
    DataConfig,
    LabelledSet,
    SyntheticDegradations,
    write_labelled_set,
)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, photos_dir) -> Path:
    """Ten small photos (the three samples, cropped and flipped in different ways), two with captions."""
    folder = tmp_path_factory.mktemp("photos")
    sources = sorted(photos_dir.glob("*.jpg"))
    for index in range(10):
        with Image.open(sources[index % 3]) as image:
            image = image.convert("RGB")
            image.thumbnail((360, 360))
            width, height = image.size
            box = (index * 7, index * 5, width - index * 3, height - index * 2)
            crop = image.crop(box)
            if index % 2:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            crop.save(folder / f"photo{index:02d}.png")
    (folder / "photo00.txt").write_text("A stone bridge over a river\n")
    (folder / "photo01.txt").write_text("Rain drops on a red leaf")
    return folder


@pytest.fixture()
def packed_file(tmp_path) -> Path:
    """A packed crops file in the format of training.data.pack: 6 crops of 3 photos, photo 2 held out."""
    generator = np.random.default_rng(0)
    base = generator.integers(0, 255, size=(3, 1, 1, 3))
    images = np.clip(base.repeat(6, 0)[:6] + generator.integers(-40, 40, size=(6, 64, 64, 3)), 0, 255).astype(np.uint8)
    source_index = np.array([0, 0, 1, 1, 2, 2], dtype=np.int32)
    heldout = np.array([0, 0, 0, 0, 1, 1], dtype=np.uint8)
    boxes = np.zeros((6, 4), dtype=np.float32)
    folder = tmp_path / "packed"
    folder.mkdir()
    save_file({"images": images, "source_index": source_index, "heldout": heldout, "boxes": boxes},
              str(folder / "crops_64.safetensors"))
    (folder / "manifest.json").write_text(json.dumps({"photos": [
        {"index": i, "id": f"pkg/photo{i}", "split": "heldout" if i == 2 else "train"} for i in range(3)]}))
    return folder / "crops_64.safetensors"


def test_folder_split_is_by_photo_disjoint_and_seeded(photo_folder):
    train = CleanPhotos(photo_folder, "train", heldout_fraction=0.3, seed=0)
    held = CleanPhotos(photo_folder, "heldout", heldout_fraction=0.3, seed=0)
    every = CleanPhotos(photo_folder, "all")
    assert len(held) == 3 and len(train) == 7
    assert set(train.names).isdisjoint(held.names)
    assert sorted(train.names + held.names) == sorted(every.names)
    assert CleanPhotos(photo_folder, "heldout", heldout_fraction=0.3, seed=0).names == held.names
    assert CleanPhotos(photo_folder, "heldout", heldout_fraction=0.3, seed=1).names != held.names
    captions = dict(zip(every.names, every.captions))
    assert captions["photo00"] == "A stone bridge over a river" and captions["photo02"] is None


def test_packed_split_follows_the_file(packed_file):
    train = CleanPhotos(packed_file, "train")
    held = CleanPhotos(packed_file, "heldout")
    assert len(train) == 4 and len(held) == 2
    assert all(name.startswith("pkg/photo2#") for name in held.names)
    assert not any(name.startswith("pkg/photo2#") for name in train.names)
    crop = train.crop(0, 32, (1.0, 2.0), True, np.random.default_rng(0))
    assert crop.shape == (3, 32, 32) and crop.dtype == torch.float32 and 0 <= crop.min() and crop.max() <= 1


def test_examples_are_reproducible_quantised_and_labelled(photo_folder):
    config = DataConfig(source=str(photo_folder), split="all", size=48, zoom=(1.0, 3.0), seed=3)
    dataset = SyntheticDegradations(config, length=6)
    first, again = dataset[4], SyntheticDegradations(config, length=6)[4]
    assert torch.equal(first.degraded, again.degraded) and first.target == again.target
    assert first.diagnosis == again.diagnosis
    other = dataset[5]
    assert not torch.equal(first.degraded, other.degraded)
    assert first.degraded.shape == (3, 48, 48) and first.clean.shape == (3, 48, 48)
    assert torch.equal(first.degraded, (first.degraded * 255).round() / 255)
    assert first.name.startswith("000004_photo")
    parsed = parse_answer(first.target)
    assert parsed.severities() == first.diagnosis.severities()
    assert parsed.scene == first.diagnosis.scene and parsed.scene
    reseeded = SyntheticDegradations(DataConfig(source=str(photo_folder), split="all", size=48, seed=4), length=6)
    assert not torch.equal(reseeded[4].degraded, first.degraded)


def test_mixture_settings_are_respected(photo_folder):
    config = DataConfig(source=str(photo_folder), split="all", size=32, zoom=(1.0, 1.0), types=("haze", "noise"),
                        p_clean=0.0, max_mix=1, severity_min=40, severity_max=60, flip=False)
    samples = SyntheticDegradations(config, length=8, targets=False).batch(list(range(8)))
    kinds = {s.diagnosis.present for s in samples}
    assert kinds <= {("haze",), ("noise",)} and len(kinds) == 2
    for sample in samples:
        (name,) = sample.diagnosis.present
        assert 38 <= sample.diagnosis.record(name).severity <= 62  # measured severities land near the request
    clean = SyntheticDegradations(DataConfig(source=str(photo_folder), split="all", size=32, p_clean=1.0), length=3,
                                   targets=False)
    assert all(clean[i].diagnosis.is_clean for i in range(3))
    assert all(torch.allclose(clean[i].degraded, clean[i].clean, atol=0.5 / 255) for i in range(3))
    mixed = SyntheticDegradations(DataConfig(source=str(photo_folder), split="all", size=32, p_clean=0.0, max_mix=4),
                                  length=16, targets=False).batch(list(range(16)))
    counts = [len(s.diagnosis.present) for s in mixed]
    assert max(counts) >= 2 and min(counts) >= 1
    assert {name for s in mixed for name in s.diagnosis.present} == set(DEGRADATIONS)


def test_captions_become_scenes_without_degradation_words(photo_folder, tmp_path):
    only_two = tmp_path / "two"
    only_two.mkdir()
    for name in ("photo00.png", "photo00.txt", "photo01.png", "photo01.txt"):
        shutil.copy(photo_folder / name, only_two / name)
    dataset = SyntheticDegradations(DataConfig(source=str(only_two), split="all", size=32), length=8)
    scenes = {dataset[i].diagnosis.scene for i in range(8)}
    assert "A stone bridge over a river" in scenes
    assert all("rain" not in scene.lower() for scene in scenes)


def test_labelled_set_round_trip(photo_folder, tmp_path):
    dataset = SyntheticDegradations(DataConfig(source=str(photo_folder), split="all", size=32), length=3)
    folder = write_labelled_set(dataset, tmp_path / "set", 3, start=1)
    assert sorted(p.name for p in (folder / "degraded").iterdir()) == ["000001.png", "000002.png", "000003.png"]
    loaded = LabelledSet.read(folder)
    assert len(loaded) == 3
    for index, sample in enumerate(loaded.samples, start=1):
        original = dataset[index]
        assert torch.allclose(sample.degraded, original.degraded, atol=1e-6)
        assert torch.allclose(sample.clean, original.clean, atol=0.5 / 255 + 1e-6)
        assert sample.diagnosis == original.diagnosis and sample.target == original.target


def test_bad_sources_and_settings_say_what_to_do(tmp_path):
    with pytest.raises(TrainingError, match="no clean photos at"):
        CleanPhotos(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="holds no image files"):
        CleanPhotos(tmp_path / "empty")
    with pytest.raises(TrainingError, match="split must be"):
        DataConfig(split="test")
    with pytest.raises(TrainingError, match="at least 16 px"):
        DataConfig(size=8)
    with pytest.raises(TrainingError, match="labels.jsonl"):
        LabelledSet.read(tmp_path / "empty")
