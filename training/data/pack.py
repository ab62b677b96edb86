"""Pack a photo corpus into one small file of seeded random crops, split by source photo.

    python -m training.data.corpus pack --src data/corpus --out data/packed --size 256 --max-mib 48

Writes ``OUT/crops_<size>.safetensors`` with tensors

    images        uint8  [N, size, size, 3]   RGB crops
    source_index  int32  [N]                  index into the ``photos`` list of OUT/manifest.json
    heldout       uint8  [N]                  1 for crops of held-out photos
    boxes         float32 [N, 4]              crop box (x0, y0, x1, y1) in the stored photo's pixels

and ``OUT/manifest.json`` (photos with their licences and split) plus ``OUT/LICENSES.md``. Whole
groups of photos (a photo and its variants) go to one split, so no photo is in both. Each crop is
cut after a random downscale of the photo (log-uniform short side between ``min_short`` and
``max_short`` pixels) so that its content is at the scale of an ordinary photo, not a 5K
wallpaper's detail. Same inputs and seed, same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.numpy import load_file, save_file

from training.data.corpus import load_manifest

HEADER_RESERVE_BYTES = 64 * 1024
MIN_CROP_LUMA_STD = 0.05


def split_groups(groups: list[str], heldout_fraction: float, seed: int) -> set[str]:
    """The held-out groups: a seeded ``heldout_fraction`` of the distinct groups (at least one when
    there are two or more groups and the fraction is positive)."""
    distinct = sorted(set(groups))
    if len(distinct) < 2 or heldout_fraction <= 0:
        return set()
    n = min(len(distinct) - 1, max(1, round(heldout_fraction * len(distinct))))
    order = np.random.default_rng([seed, 1]).permutation(len(distinct))
    return {distinct[i] for i in order[:n]}


def crops_budget(n_photos: int, size: int, max_mib: float, crops_per_photo: int | None) -> list[int]:
    """How many crops each photo gets so that the file stays under ``max_mib`` MiB."""
    per_crop = size * size * 3 + 4 + 1 + 16
    total = int((max_mib * 2**20 - HEADER_RESERVE_BYTES) // per_crop)
    if crops_per_photo is not None:
        total = min(total, crops_per_photo * n_photos)
    if total < n_photos:
        raise ValueError(
            f"--max-mib {max_mib} holds only {total} crops of {size}x{size} for {n_photos} photos; "
            "raise --max-mib or lower --size"
        )
    base, extra = divmod(total, n_photos)
    return [base + (i < extra) for i in range(n_photos)]


def random_crops(
    image: Image.Image, count: int, size: int, rng: np.random.Generator, min_short: int, max_short: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` crops of ``size`` px after a random downscale; returns (uint8 [n,s,s,3], boxes)."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    short = min(width, height)
    crops, boxes = [], []
    for _ in range(count):
        for attempt in range(10):
            lo, hi = min(min_short, short), min(max_short, short)
            target_short = float(np.exp(rng.uniform(np.log(max(lo, size)), np.log(max(hi, size)))))
            side = size * short / target_short  # crop side in stored-photo pixels
            side = min(side, short)
            x0 = rng.uniform(0, width - side)
            y0 = rng.uniform(0, height - side)
            box = (x0, y0, x0 + side, y0 + side)
            crop = np.asarray(rgb.resize((size, size), Image.LANCZOS, box=box))
            luma_std = (crop.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).std() / 255
            if luma_std >= MIN_CROP_LUMA_STD or attempt == 9:
                break
        crops.append(crop)
        boxes.append(box)
    return np.stack(crops), np.asarray(boxes, dtype=np.float32)


def pack(
    src: Path,
    out: Path,
    size: int = 256,
    max_mib: float = 48.0,
    heldout_fraction: float = 0.1,
    seed: int = 0,
    crops_per_photo: int | None = None,
    min_short: int = 320,
    max_short: int = 1200,
    log=print,
) -> dict:
    """Cut the crops of the corpus at ``src`` into ``out``; returns the packed manifest."""
    src, out = Path(src), Path(out)
    corpus = load_manifest(src)
    photos = sorted(corpus["photos"], key=lambda p: p["id"])
    if not photos:
        raise ValueError(f"the corpus at {src} has no photos")
    heldout_groups = split_groups([p["group"] for p in photos], heldout_fraction, seed)
    counts = crops_budget(len(photos), size, max_mib, crops_per_photo)
    # Which photos get the remainder crops is seeded, not alphabetical.
    counts = [counts[i] for i in np.argsort(np.random.default_rng([seed, 2]).permutation(len(photos)))]

    images, source_index, heldout, boxes = [], [], [], []
    for index, (photo, count) in enumerate(zip(photos, counts)):
        with Image.open(src / photo["file"]) as image:
            crops, crop_boxes = random_crops(
                image, count, size, np.random.default_rng([seed, 3, index]), min_short, max_short
            )
        images.append(crops)
        boxes.append(crop_boxes)
        source_index += [index] * count
        heldout += [int(photo["group"] in heldout_groups)] * count

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"crops_{size}.safetensors"
    tensors = {
        "images": np.concatenate(images),
        "source_index": np.asarray(source_index, dtype=np.int32),
        "heldout": np.asarray(heldout, dtype=np.uint8),
        "boxes": np.concatenate(boxes),
    }
    # One metadata key: safetensors writes metadata from a hash map, so several keys come out in
    # varying order and the file would not be byte-for-byte reproducible.
    info = json.dumps({"format": "rnr-photo-crops/1", "size": size, "seed": seed}, sort_keys=True)
    save_file(tensors, str(path), metadata={"rnr": info})
    n_bytes = path.stat().st_size
    if n_bytes > max_mib * 2**20:
        raise RuntimeError(f"{path} is {n_bytes} bytes, over --max-mib {max_mib}; this is a bug in crops_budget")
    manifest = {
        "format": "rnr-photo-crops/1",
        "file": path.name,
        "bytes": n_bytes,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "size": size,
        "seed": seed,
        "heldout_fraction": heldout_fraction,
        "min_short": min_short,
        "max_short": max_short,
        "crops": int(len(source_index)),
        "crops_heldout": int(sum(heldout)),
        "photos": [
            {
                "index": i,
                "id": p["id"],
                "split": "heldout" if p["group"] in heldout_groups else "train",
                "crops": c,
                **{k: p[k] for k in ("group", "package", "version", "original_path", "license", "author")},
            }
            for i, (p, c) in enumerate(zip(photos, counts))
        ],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if (src / "LICENSES.md").is_file():
        shutil.copyfile(src / "LICENSES.md", out / "LICENSES.md")
    log(
        f"{manifest['crops']} crops of {size}x{size} from {len(photos)} photos "
        f"({manifest['crops_heldout']} crops from {len(heldout_groups)} held-out groups) -> "
        f"{path} ({n_bytes / 2**20:.1f} MiB)"
    )
    return manifest


def load_packed(path: Path, split: str = "all") -> dict[str, np.ndarray]:
    """The tensors of a packed file, optionally only ``split`` = ``"train"`` or ``"heldout"``."""
    if split not in ("all", "train", "heldout"):
        raise ValueError(f"split must be 'all', 'train' or 'heldout', got {split!r}")
    tensors = load_file(str(path))
    if split == "all":
        return tensors
    keep = tensors["heldout"] == (1 if split == "heldout" else 0)
    return {name: value[keep] for name, value in tensors.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data.corpus pack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=Path("data/corpus"), help="corpus folder (manifest.json)")
    parser.add_argument("--out", type=Path, default=Path("data/packed"), help="output folder")
    parser.add_argument("--size", type=int, default=256, help="crop side, pixels")
    parser.add_argument("--max-mib", type=float, default=48.0, help="size cap of the packed file, MiB")
    parser.add_argument("--heldout", type=float, default=0.1, help="fraction of photo groups held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crops-per-photo", type=int, default=None, help="at most this many (default: fill the cap)")
    parser.add_argument("--min-short", type=int, default=320, help="smallest short side after downscale, px")
    parser.add_argument("--max-short", type=int, default=1200, help="largest short side after downscale, px")
    args = parser.parse_args(argv)
    pack(
        args.src, args.out, args.size, args.max_mib, args.heldout, args.seed,
        args.crops_per_photo, args.min_short, args.max_short,
    )
    return 0
