"""Pack a photo corpus into one small file of seeded random crops, split by source photo.

    python -m training.data.corpus pack --src data/corpus --out data/packed --size 256 --max-mib 48
    python -m training.data.corpus pack --src data/corpus data/corpus_wide --out data/packed_wide \
        --format jpeg --max-mib 40 --crops-per-photo 24

Writes ``OUT/crops_<size>.safetensors`` (``--format raw``) with tensors

    images        uint8  [N, size, size, 3]   RGB crops
    source_index  int32  [N]                  index into the ``photos`` list of OUT/manifest.json
    heldout       uint8  [N]                  1 for crops of held-out photos
    boxes         float32 [N, 4]              crop box (x0, y0, x1, y1) in the stored photo's pixels

or ``OUT/crops_<size>_jpeg.safetensors`` (``--format jpeg``), where each crop is a JPEG (quality 95,
4:4:4, about a quarter of the raw bytes) instead of raw pixels:

    jpeg          uint8  [total_bytes]        the JPEG files, one after the other
    jpeg_offsets  int64  [N + 1]              crop i is ``jpeg[jpeg_offsets[i]:jpeg_offsets[i + 1]]``
    source_index, heldout, boxes              as above

Either file loads with :func:`load_packed_crops` (uint8 ``[N, 3, size, size]``). Several corpus
folders can be packed together: the held-out groups are drawn from the first folder exactly as when
it is packed alone, and the photos of the other folders are all for training. In the JPEG format each
photo gets up to ``--crops-per-photo`` crops, taken round-robin over the photos until the file is full.

and ``OUT/manifest.json`` (photos with their licences and split) plus ``OUT/LICENSES.md``. Whole
groups of photos (a photo and its variants) go to one split, so no photo is in both. Each crop is
cut after a random downscale of the photo (log-uniform short side between ``min_short`` and
``max_short`` pixels) so that its content is at the scale of an ordinary photo, not a 5K
wallpaper's detail. Same inputs and seed, same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import load_file, save_file

from training.data.corpus import load_manifest

HEADER_RESERVE_BYTES = 64 * 1024
MIN_CROP_LUMA_STD = 0.05
RAW_FORMAT = "rnr-photo-crops/1"
JPEG_FORMAT = "rnr-photo-crops-jpeg/1"
JPEG_CROPS_PER_PHOTO = 24
# Bytes per crop besides its JPEG: offset (int64), source_index (int32), heldout (uint8), box (4 x float32).
JPEG_CROP_OVERHEAD_BYTES = 8 + 4 + 1 + 16


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


def encode_jpeg(crop: np.ndarray, quality: int) -> bytes:
    """One uint8 [H, W, 3] crop as a baseline JPEG with 4:4:4 chroma (no subsampling); same input, same bytes."""
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="JPEG", quality=quality, subsampling=0, optimize=True)
    return buffer.getvalue()


def decode_jpeg(data: bytes | np.ndarray) -> np.ndarray:
    """A JPEG as uint8 [H, W, 3] RGB."""
    with Image.open(io.BytesIO(bytes(data))) as image:
        return np.asarray(image.convert("RGB"))


def _sources(src: Path | list[Path]) -> list[Path]:
    sources = [Path(s) for s in ([src] if isinstance(src, (str, Path)) else src)]
    if not sources:
        raise ValueError("no corpus folder given: pass at least one --src folder")
    return sources


def _gather_photos(sources: list[Path]) -> tuple[list[dict], set[str]]:
    """All photos of all corpora, sorted by id, each with its ``source`` folder; and the held-out
    candidates' groups (those of the first corpus)."""
    photos, seen = [], {}
    for source in sources:
        for photo in load_manifest(source)["photos"]:
            if photo["id"] in seen:
                raise ValueError(f"photo {photo['id']!r} is in both {seen[photo['id']]} and {source}; "
                                 "pack each corpus folder only once")
            seen[photo["id"]] = source
            photos.append({**photo, "source": str(source)})
    if not photos:
        raise ValueError(f"the corpora at {[str(s) for s in sources]} have no photos")
    first_groups = {p["group"] for p in photos if p["source"] == str(sources[0])}
    return sorted(photos, key=lambda p: p["id"]), first_groups


def _jpeg_selection(encoded: list[list[bytes]], max_mib: float, seed: int) -> list[int]:
    """How many of its crops each photo keeps: round-robin over the photos (in a seeded order) until
    the next crop would not fit in ``max_mib`` MiB."""
    budget = max_mib * 2**20 - HEADER_RESERVE_BYTES - 8
    order = np.random.default_rng([seed, 2]).permutation(len(encoded))
    counts, used = [0] * len(encoded), 0
    for round_index in range(max(len(crops) for crops in encoded)):
        for i in order:
            if round_index >= len(encoded[i]):
                continue
            cost = len(encoded[i][round_index]) + JPEG_CROP_OVERHEAD_BYTES
            if used + cost > budget:
                return counts
            used += cost
            counts[i] += 1
    return counts


def pack(
    src: Path | list[Path],
    out: Path,
    size: int = 256,
    max_mib: float = 48.0,
    heldout_fraction: float = 0.1,
    seed: int = 0,
    crops_per_photo: int | None = None,
    min_short: int = 320,
    max_short: int = 1200,
    log=print,
    fmt: str = "raw",
    jpeg_quality: int = 95,
) -> dict:
    """Cut the crops of the corpus (or corpora) at ``src`` into ``out``; returns the packed manifest.

    ``fmt`` is ``"raw"`` (uint8 pixels) or ``"jpeg"`` (each crop JPEG-encoded at ``jpeg_quality``,
    4:4:4; ``crops_per_photo`` defaults to :data:`JPEG_CROPS_PER_PHOTO`).
    """
    if fmt not in ("raw", "jpeg"):
        raise ValueError(f"format must be 'raw' or 'jpeg', got {fmt!r}")
    sources = _sources(src)
    out = Path(out)
    photos, first_groups = _gather_photos(sources)
    # Held out only among the first corpus's groups: packing more folders leaves its split as it was.
    heldout_groups = split_groups(sorted(first_groups), heldout_fraction, seed)
    if fmt == "raw":
        counts = crops_budget(len(photos), size, max_mib, crops_per_photo)
        # Which photos get the remainder crops is seeded, not alphabetical.
        counts = [counts[i] for i in np.argsort(np.random.default_rng([seed, 2]).permutation(len(photos)))]
    else:
        counts = [crops_per_photo or JPEG_CROPS_PER_PHOTO] * len(photos)

    images, encoded, boxes = [], [], []
    for index, (photo, count) in enumerate(zip(photos, counts)):
        with Image.open(Path(photo["source"]) / photo["file"]) as image:
            crops, crop_boxes = random_crops(
                image, count, size, np.random.default_rng([seed, 3, index]), min_short, max_short
            )
        if fmt == "raw":
            images.append(crops)
        else:
            encoded.append([encode_jpeg(crop, jpeg_quality) for crop in crops])
        boxes.append(crop_boxes)
    if fmt == "jpeg":
        counts = _jpeg_selection(encoded, max_mib, seed)
        if min(counts) == 0:
            raise ValueError(f"--max-mib {max_mib} does not hold one JPEG crop of each of {len(photos)} photos; "
                             "raise --max-mib or lower --size")
        encoded = [crops[:c] for crops, c in zip(encoded, counts)]
        boxes = [b[:c] for b, c in zip(boxes, counts)]
    source_index = [i for i, c in enumerate(counts) for _ in range(c)]
    heldout = [int(photos[i]["group"] in heldout_groups) for i in source_index]

    out.mkdir(parents=True, exist_ok=True)
    common = {
        "source_index": np.asarray(source_index, dtype=np.int32),
        "heldout": np.asarray(heldout, dtype=np.uint8),
        "boxes": np.concatenate(boxes),
    }
    if fmt == "raw":
        path = out / f"crops_{size}.safetensors"
        tensors = {"images": np.concatenate(images), **common}
        info = {"format": RAW_FORMAT, "size": size, "seed": seed}
    else:
        path = out / f"crops_{size}_jpeg.safetensors"
        flat = [data for crops in encoded for data in crops]
        offsets = np.concatenate([[0], np.cumsum([len(d) for d in flat])]).astype(np.int64)
        tensors = {"jpeg": np.frombuffer(b"".join(flat), dtype=np.uint8), "jpeg_offsets": offsets, **common}
        info = {"format": JPEG_FORMAT, "size": size, "seed": seed, "jpeg_quality": jpeg_quality, "subsampling": "4:4:4"}
    # One metadata key: safetensors writes metadata from a hash map, so several keys come out in
    # varying order and the file would not be byte-for-byte reproducible.
    save_file(tensors, str(path), metadata={"rnr": json.dumps(info, sort_keys=True)})
    n_bytes = path.stat().st_size
    if n_bytes > max_mib * 2**20:
        raise RuntimeError(f"{path} is {n_bytes} bytes, over --max-mib {max_mib}; this is a bug in the crop budget")
    manifest = {
        "format": info["format"],
        "file": path.name,
        "bytes": n_bytes,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "size": size,
        "seed": seed,
        "heldout_fraction": heldout_fraction,
        "min_short": min_short,
        "max_short": max_short,
        **({} if fmt == "raw" else {
            "jpeg_quality": jpeg_quality, "subsampling": "4:4:4",
            "crops_per_photo_cap": crops_per_photo or JPEG_CROPS_PER_PHOTO,
            "sources": [str(s) for s in sources],
            "heldout_groups": sorted(heldout_groups),
        }),
        "crops": len(source_index),
        "crops_heldout": sum(heldout),
        "photos": [
            {
                "index": i,
                "id": p["id"],
                "split": "heldout" if p["group"] in heldout_groups else "train",
                "crops": c,
                **({} if len(sources) == 1 else {"source": p["source"]}),
                **{k: p[k] for k in ("group", "package", "version", "original_path", "license", "author")},
            }
            for i, (p, c) in enumerate(zip(photos, counts))
        ],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    _write_licences(sources, out)
    log(
        f"{manifest['crops']} crops of {size}x{size} ({fmt}) from {len(photos)} photos "
        f"({manifest['crops_heldout']} crops from {len(heldout_groups)} held-out groups) -> "
        f"{path} ({n_bytes / 2**20:.1f} MiB)"
    )
    return manifest


def _write_licences(sources: list[Path], out: Path) -> None:
    """``OUT/LICENSES.md``: the corpus's own, or those of all corpora one after the other."""
    found = [s / "LICENSES.md" for s in sources if (s / "LICENSES.md").is_file()]
    if len(sources) == 1 and found:
        shutil.copyfile(found[0], out / "LICENSES.md")
    elif found:
        text = "\n\n".join(f.read_text(encoding="utf-8").rstrip("\n") for f in found)
        (out / "LICENSES.md").write_text(text + "\n", encoding="utf-8")


def _split_mask(tensors: dict[str, np.ndarray], split: str) -> np.ndarray | None:
    """Which crops belong to ``split`` (``None``: all of them)."""
    if split not in ("all", "train", "heldout"):
        raise ValueError(f"split must be 'all', 'train' or 'heldout', got {split!r}")
    return None if split == "all" else tensors["heldout"] == (1 if split == "heldout" else 0)


def _jpeg_parts(tensors: dict[str, np.ndarray], keep: np.ndarray | None) -> list[np.ndarray]:
    """The JPEG bytes of each kept crop of a JPEG-format file."""
    offsets, data = tensors["jpeg_offsets"], tensors["jpeg"]
    indices = range(len(offsets) - 1) if keep is None else np.flatnonzero(keep)
    return [data[offsets[i]:offsets[i + 1]] for i in indices]


def load_packed(path: Path, split: str = "all") -> dict[str, np.ndarray]:
    """The tensors of a packed file, optionally only ``split`` = ``"train"`` or ``"heldout"``.

    For the JPEG format the selected crops' bytes are gathered into a new ``jpeg`` buffer with
    matching ``jpeg_offsets``; decode them with :func:`load_packed_crops`.
    """
    tensors = load_file(str(path))
    keep = _split_mask(tensors, split)
    if keep is None:
        return tensors
    selected = {name: value[keep] for name, value in tensors.items() if name not in ("jpeg", "jpeg_offsets")}
    if "jpeg" in tensors:
        parts = _jpeg_parts(tensors, keep)
        selected["jpeg"] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
        selected["jpeg_offsets"] = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return selected


def load_packed_crops(path: str | Path, split: str = "train", workers: int = 4) -> torch.Tensor:
    """Clean crops of a packed file as uint8 ``[N, 3, size, size]`` (RGB), raw or JPEG format.

    ``split`` is ``"train"``, ``"heldout"`` or ``"all"``. JPEG crops are decoded with Pillow on
    ``workers`` threads (Pillow releases the GIL while decoding), straight from the file's buffer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"packed crops not found at {str(path)!r}; build them with "
                                "`python -m training.data.corpus pack` (see training/data)")
    tensors = load_file(str(path))
    keep = _split_mask(tensors, split)
    if "images" in tensors:
        images = tensors["images"] if keep is None else tensors["images"][keep]
    elif "jpeg" in tensors:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            decoded = list(pool.map(decode_jpeg, _jpeg_parts(tensors, keep)))
        images = np.stack(decoded) if decoded else np.zeros((0, 0, 0, 3), dtype=np.uint8)
    else:
        raise ValueError(f"{path} holds neither 'images' nor 'jpeg' tensors (keys {sorted(tensors)}); "
                         "it is not a packed-crops file, re-create it with `python -m training.data.corpus pack`")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data.corpus pack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, nargs="+", default=[Path("data/corpus")],
                        help="corpus folder(s) (manifest.json); held-out photos come from the first only")
    parser.add_argument("--out", type=Path, default=Path("data/packed"), help="output folder")
    parser.add_argument("--size", type=int, default=256, help="crop side, pixels")
    parser.add_argument("--max-mib", type=float, default=48.0, help="size cap of the packed file, MiB")
    parser.add_argument("--heldout", type=float, default=0.1, help="fraction of photo groups held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crops-per-photo", type=int, default=None,
                        help=f"at most this many (default: fill the cap; jpeg: {JPEG_CROPS_PER_PHOTO})")
    parser.add_argument("--format", dest="fmt", choices=("raw", "jpeg"), default="raw",
                        help="raw uint8 pixels, or each crop as a JPEG (quality --jpeg-quality, 4:4:4)")
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument("--min-short", type=int, default=320, help="smallest short side after downscale, px")
    parser.add_argument("--max-short", type=int, default=1200, help="largest short side after downscale, px")
    args = parser.parse_args(argv)
    pack(
        args.src, args.out, args.size, args.max_mib, args.heldout, args.seed,
        args.crops_per_photo, args.min_short, args.max_short, fmt=args.fmt, jpeg_quality=args.jpeg_quality,
    )
    return 0
