"""Labelled training data: clean photos degraded by :mod:`rnr.degrade`, with ground truth and CoT target.

Sources of clean photos (:class:`CleanPhotos`):

- a **folder** of photos (any size; ``NAME.txt`` beside ``NAME.jpg`` is its caption). The held-out
  split is a seeded ``heldout_fraction`` of the files, by name, so a photo is never in both splits.
  Crops are cut after a random downscale, so that their content is at the scale of an ordinary photo.
- a **packed** file of crops (``crops_<size>.safetensors`` from :mod:`training.data.pack`, small enough to
  carry to a GPU machine); its ``heldout`` flags give the split (whole photos are held out).

:class:`SyntheticDegradations` turns sample index ``i`` into one labelled example, always the same for
the same config and ``i``: a photo and a square crop (zoomed out by a random factor in ``zoom``, resized
to ``size``, randomly flipped), degraded by a random mixture (:func:`rnr.degrade.random_degrade`:
clean with probability ``p_clean``, else 1..``max_mix`` of ``types`` at severities in
``severity_min..severity_max``), quantised to 8 bits like a real photo, with its ground-truth
:class:`~rnr.diagnosis.Diagnosis` (scene set) and the chain-of-thought target of :mod:`training.cot`.

:func:`write_labelled_set` stores examples as PNGs plus ``labels.jsonl``; :class:`LabelledSet` reads
such a folder back (a fixed evaluation set).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rnr.degrade import AppliedParams, random_degrade
from rnr.diagnosis import DEGRADATIONS, Diagnosis, from_dict, to_dict
from rnr.images import list_image_files, load_image, save_image

from .config import TrainingError, option, step_seed
from .cot import cot_target, describe_content, scene_from_caption

Image.MAX_IMAGE_PIXELS = None
PHOTO_CACHE = 64
LABELS_FILE = "labels.jsonl"


@dataclass
class DataConfig:
    """Where the clean photos come from and how they are cropped and degraded."""

    source: str = option("data/packed/crops_256.safetensors",
                         "a folder of clean photos or a packed crops_<size>.safetensors file")
    split: str = option("train", "train, heldout or all")
    heldout_fraction: float = option(0.1, "share of a folder's photos held out (packed files carry their own split)")
    size: int = option(256, "side of the square training images, px")
    zoom: tuple[float, ...] = option((1.0, 1.0), "crop side as a multiple of size, drawn log-uniformly in this "
                                     "range (capped by the photo), then resized to size")
    flip: bool = option(True, "mirror half of the crops left-right")
    types: tuple[str, ...] = option(DEGRADATIONS, "degradations to draw from")
    p_clean: float = option(0.1, "probability that an example stays clean")
    max_mix: int = option(3, "most degradations mixed in one example")
    severity_min: int = option(10, "lowest severity drawn")
    severity_max: int = option(100, "highest severity drawn")
    quantize: bool = option(True, "round degraded images to 8 bits, like a stored photo")
    min_short: int = option(320, "folder photos: smallest short side after the random downscale, px")
    max_short: int = option(1200, "folder photos: largest short side after the random downscale, px")
    seed: int = option(0, "seed of the examples (index i is the same example for the same seed)")
    device: str = option("cpu", "device the degradations are synthesised on (cpu, cuda)")

    def __post_init__(self) -> None:
        if self.split not in ("train", "heldout", "all"):
            raise TrainingError(f"data split must be train, heldout or all, got {self.split!r}")
        if self.size < 16:
            raise TrainingError(f"data size must be at least 16 px (rnr.degrade's minimum), got {self.size}")
        if len(self.zoom) != 2 or not 0 < self.zoom[0] <= self.zoom[1]:
            raise TrainingError(f"data zoom must be two numbers 0 < low <= high, got {self.zoom!r}")


@dataclass
class Sample:
    """One labelled example."""

    degraded: torch.Tensor
    """[3,H,W] float32 in 0..1."""
    diagnosis: Diagnosis
    """Ground truth, with the scene."""
    target: str
    """The reasoner's answer to learn (chain of thought + JSON)."""
    clean: torch.Tensor | None = None
    name: str = ""
    params: AppliedParams | None = None


# ---- clean photos -----------------------------------------------------------------------------------
class CleanPhotos:
    """The clean photos of one split of a folder or a packed file."""

    def __init__(self, source: str | Path, split: str = "train", heldout_fraction: float = 0.1, seed: int = 0) -> None:
        self.source = Path(source).expanduser()
        self.split = split
        self._cache: OrderedDict[int, Image.Image] = OrderedDict()
        if self.source.is_file() and self.source.suffix == ".safetensors":
            self._load_packed()
        elif self.source.is_dir():
            self._load_folder(heldout_fraction, seed)
        else:
            raise TrainingError(f"no clean photos at {self.source}: pass a folder of photos or a packed "
                                "crops_<size>.safetensors file (python -m training.data.corpus pack ... makes one)")
        if not self.names:
            raise TrainingError(f"{self.source} holds no photos in split {split!r}")

    def _load_packed(self) -> None:
        from training.data.pack import load_packed

        tensors = load_packed(self.source, split=self.split)
        self.packed = torch.from_numpy(np.ascontiguousarray(tensors["images"]))
        manifest_path = self.source.parent / "manifest.json"
        photos = {}
        if manifest_path.is_file():
            photos = {p["index"]: p["id"] for p in json.loads(manifest_path.read_text(encoding="utf-8"))["photos"]}
        self.names = [f"{photos.get(int(s), f'photo{int(s)}')}#{i}" for i, s in enumerate(tensors["source_index"])]
        self.files: list[str] = []
        self.captions: list[str | None] = [None] * len(self.names)

    def _load_folder(self, heldout_fraction: float, seed: int) -> None:
        files = list_image_files(self.source)
        if not files:
            raise TrainingError(f"{self.source} holds no image files (.png, .jpg, .webp, ...)")
        heldout = _heldout_names([Path(f).name for f in files], heldout_fraction, seed)
        keep = [f for f in files if self.split == "all" or (Path(f).name in heldout) == (self.split == "heldout")]
        self.packed = None
        self.files = keep
        self.names = [Path(f).stem for f in keep]
        self.captions = []
        for file in keep:
            caption = Path(file).with_suffix(".txt")
            self.captions.append(caption.read_text(encoding="utf-8").strip() if caption.is_file() else None)

    def __len__(self) -> int:
        return len(self.names)

    def _photo(self, index: int) -> Image.Image:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        with Image.open(self.files[index]) as image:
            photo = image.convert("RGB")
        self._cache[index] = photo
        if len(self._cache) > PHOTO_CACHE:
            self._cache.popitem(last=False)
        return photo

    def crop(self, index: int, size: int, zoom: tuple[float, float], flip: bool, rng: np.random.Generator,
             min_short: int = 320, max_short: int = 1200) -> torch.Tensor:
        """A square crop [3,size,size] float32 of photo ``index``."""
        factor = math.exp(rng.uniform(math.log(zoom[0]), math.log(zoom[1])))
        if self.packed is not None:
            photo = self.packed[index].permute(2, 0, 1).float() / 255.0
            side = min(photo.shape[-1], photo.shape[-2], max(1, round(size * factor)))
            top = int(rng.integers(0, photo.shape[-2] - side + 1))
            left = int(rng.integers(0, photo.shape[-1] - side + 1))
            crop = photo[:, top:top + side, left:left + side]
        else:
            from training.data.pack import random_crops

            side = max(size, round(size * factor))
            crops, _ = random_crops(self._photo(index), 1, side, rng, max(min_short, side), max(max_short, side))
            crop = torch.from_numpy(crops[0]).permute(2, 0, 1).float() / 255.0
        if crop.shape[-1] != size:
            crop = F.interpolate(crop[None], size=(size, size), mode="bicubic", antialias=True,
                                 align_corners=False)[0].clamp(0, 1)
        if flip and rng.uniform() < 0.5:
            crop = crop.flip(-1)
        return crop.contiguous()


def _heldout_names(names: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded ``fraction`` of the names (at least one when there are two or more and fraction > 0)."""
    distinct = sorted(set(names))
    if len(distinct) < 2 or fraction <= 0:
        return set()
    count = min(len(distinct) - 1, max(1, round(fraction * len(distinct))))
    order = np.random.default_rng([seed, 7]).permutation(len(distinct))
    return {distinct[i] for i in order[:count]}


# ---- the labelled examples ------------------------------------------------------------------------------
class SyntheticDegradations(torch.utils.data.Dataset):
    """Example ``i`` of the config: degraded crop, ground truth and CoT target (see the module docs).

    ``length`` only bounds iteration and ``len()``; any index is valid and reproducible.
    """

    def __init__(self, config: DataConfig, length: int = 10_000, photos: CleanPhotos | None = None,
                 targets: bool = True) -> None:
        self.config = config
        self.length = int(length)
        self.photos = photos or CleanPhotos(config.source, config.split, config.heldout_fraction, config.seed)
        self.targets = targets
        self.device = torch.device(config.device)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        if not isinstance(index, int) or index < 0:
            raise IndexError(f"sample index must be a non-negative integer, got {index!r}")
        c = self.config
        rng = np.random.default_rng(step_seed(c.seed, index, 1))
        photo = int(rng.integers(0, len(self.photos)))
        clean = self.photos.crop(photo, c.size, c.zoom, c.flip, rng, c.min_short, c.max_short).to(self.device)
        result = random_degrade(clean[None], seed=step_seed(c.seed, index, 2), types=c.types, p_clean=c.p_clean,
                                max_mix=c.max_mix, severity_range=(c.severity_min, c.severity_max))
        degraded = result.images[0]
        if c.quantize:
            degraded = (degraded * 255.0).round() / 255.0
        caption = self.photos.captions[photo]
        scene = scene_from_caption(caption) if caption else describe_content(clean)
        diagnosis = result.diagnoses[0].replace(scene=scene)
        target = cot_target(diagnosis, degraded, scene=scene, applied=result.params[0]) if self.targets else ""
        return Sample(degraded=degraded, diagnosis=diagnosis, target=target, clean=clean,
                      name=f"{index:06d}_{self.photos.names[photo]}", params=result.params[0])

    def batch(self, indices: list[int]) -> list[Sample]:
        return [self[int(i)] for i in indices]


# ---- fixed sets on disk ---------------------------------------------------------------------------------
def write_labelled_set(dataset: SyntheticDegradations, folder: str | Path, count: int, *, start: int = 0,
                       with_clean: bool = True, progress=None) -> Path:
    """Examples ``start .. start+count-1`` as ``degraded/NNNNNN.png`` (and ``clean/``) plus ``labels.jsonl``
    (name, files, ground-truth diagnosis, target)."""
    folder = Path(folder)
    (folder / "degraded").mkdir(parents=True, exist_ok=True)
    if with_clean:
        (folder / "clean").mkdir(parents=True, exist_ok=True)
    with (folder / LABELS_FILE).open("w", encoding="utf-8") as labels:
        for index in range(start, start + count):
            sample = dataset[index]
            file = f"{index:06d}.png"
            save_image(folder / "degraded" / file, sample.degraded[None].cpu())
            if with_clean and sample.clean is not None:
                save_image(folder / "clean" / file, sample.clean[None].cpu())
            labels.write(json.dumps({"name": sample.name, "file": file, "diagnosis": to_dict(sample.diagnosis),
                                     "target": sample.target}, ensure_ascii=False) + "\n")
            if progress is not None:
                progress(index - start + 1, count)
    return folder


@dataclass
class LabelledSet:
    """A folder written by :func:`write_labelled_set`, read back."""

    folder: Path
    samples: list[Sample] = field(default_factory=list)

    @classmethod
    def read(cls, folder: str | Path) -> LabelledSet:
        folder = Path(folder)
        path = folder / LABELS_FILE
        if not path.is_file():
            raise TrainingError(f"{folder} holds no {LABELS_FILE}: write a labelled set with `rnr-train data --out "
                                f"{folder}`")
        samples = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            degraded = load_image(folder / "degraded" / row["file"]).tensor[0]
            clean_file = folder / "clean" / row["file"]
            clean = load_image(clean_file).tensor[0] if clean_file.is_file() else None
            samples.append(Sample(degraded=degraded, diagnosis=from_dict(row["diagnosis"]), target=row["target"],
                                  clean=clean, name=row["name"]))
        return cls(folder, samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


__all__ = ["CleanPhotos", "DataConfig", "LabelledSet", "Sample", "SyntheticDegradations", "write_labelled_set"]
