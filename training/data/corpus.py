"""Assemble a corpus of freely licensed clean photographs from Debian packages.

    python -m training.data.corpus --out data/corpus            # fetch, filter, write photos + manifest
    python -m training.data.corpus --set calibration --out data/corpus_calibration
    python -m training.data.corpus --set wide --out data/corpus_wide   # more training photos
    python -m training.data.corpus pack --src data/corpus --out data/packed --size 256 --max-mib 48
    python -m training.data.corpus samples --src data/corpus --out rnr/assets/samples

The first command runs ``apt-get download`` (and ``apt-get update`` once if that fails) for
:data:`PACKAGES`, unpacks each ``.deb`` with ``dpkg -x`` into a temporary folder, keeps only real
photographs (image statistics plus a hand-reviewed exclude list, see :data:`EXCLUDE`), resolves the
author and licence of every kept photo (:mod:`training.data.licences`), and writes

    OUT/images/<id>.png     the photo, RGB, long side at most ``--max-side`` pixels (Lanczos)
    OUT/manifest.json       one record per photo: package, version, original path, licence, author
    OUT/LICENSES.md         the same, as a table (also kept in the repo as training/data/LICENSES.md)

``--set calibration`` does the same for :data:`CALIBRATION_PACKAGES`: photos that are in neither the
training nor the held-out split of the training corpus (its split and crops stay byte-for-byte as
they were), used only to calibrate the lite reasoner's presence thresholds
(``python -m training.lite.calibrate``). ``--set wide`` does it for :data:`WIDE_PACKAGES`: more
training photos, packed together with the training corpus (``pack --src data/corpus data/corpus_wide``).

The output is deterministic: packages, candidates and photos are processed in sorted order.
The package lists and the hand-review tables are data in :mod:`training.data.packages`.
The second command is :mod:`training.data.pack`; the third re-creates the sample photos shipped
in ``rnr/assets/samples`` (:data:`SAMPLES`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.licences import resolve_licence
from training.data.packages import (
    CALIBRATION_PACKAGES,
    EXCLUDE,
    INCLUDE,
    PACKAGE_SETS,
    PACKAGES,
    SAMPLES,
    WIDE_PACKAGES,
    PackageSpec,
)
from training.data.rcc import unpack_rcc

Image.MAX_IMAGE_PIXELS = None

MANIFEST_NAME = "manifest.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_OUT = {"train": "data/corpus", "calibration": "data/corpus_calibration", "wide": "data/corpus_wide",
               "wide2": "data/corpus_wide2"}


@dataclass(frozen=True)
class Candidate:
    """One image found in a package; ``group`` ties variants of one photo together."""

    id: str
    package: str
    version: str
    original_path: str
    local_path: Path
    group: str


def _sh(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def download_debs(names: list[str], dest: Path) -> dict[str, Path]:
    """``apt-get download`` each package into ``dest``; returns ``{package: .deb path}``."""
    dest.mkdir(parents=True, exist_ok=True)
    result = _sh(["apt-get", "download", *names], cwd=dest)
    if result.returncode != 0:
        _sh(["apt-get", "update"])
        result = _sh(["apt-get", "download", *names], cwd=dest)
    if result.returncode != 0:
        raise RuntimeError(
            f"apt-get download {' '.join(names)} failed ({result.returncode}): "
            f"{result.stderr.strip()[-500:]}. Check that Debian's package archive is reachable, "
            "or pass --debs DIR with the .deb files already downloaded."
        )
    return find_debs(names, dest)


def find_debs(names: list[str], folder: Path) -> dict[str, Path]:
    """The newest ``<name>_*.deb`` in ``folder`` for each package name that has one."""
    found = {}
    for name in names:
        debs = sorted(folder.glob(f"{name}_*.deb"))
        if debs:
            found[name] = debs[-1]
    return found


def deb_version(deb: Path) -> str:
    return _sh(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip()


def extract_deb(deb: Path, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    result = _sh(["dpkg", "-x", str(deb), str(root)])
    if result.returncode != 0:
        raise RuntimeError(f"dpkg -x {deb} failed: {result.stderr.strip()}")


def _pixels_in_name(path: Path) -> int:
    match = re.search(r"(\d+)x(\d+)", path.name)
    return int(match[1]) * int(match[2]) if match else 0


def list_candidates(spec: PackageSpec, version: str, root: Path) -> list[Candidate]:
    """Every image of a package, one per photo: the largest of several resolutions of one image."""
    best: dict[str, tuple[tuple[int, int], Path]] = {}
    for pattern in spec.patterns:
        for path in sorted(root.glob(pattern)):
            if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if ".rcc.d/" in str(path):  # one Qt resource per activity: names repeat across activities
                key = group = f"{str(path).split('.rcc.d/')[0].rsplit('/', 1)[-1]}-{path.stem}"
            elif "/wallpapers/" in str(path):  # KDE: wallpapers/<Name>/contents/images[_dark]/WxH.ext
                group, variant = path.parents[2].name, path.parent.name
                key = group if variant == "images" else f"{group}-dark"
            else:
                key = group = re.sub(r"_\d+x\d+$", "", path.stem)
            rank = (_pixels_in_name(path), path.stat().st_size)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, path)
    return [
        Candidate(
            id=f"{spec.name}/{key}",
            package=spec.name,
            version=version,
            original_path="/" + str(path.relative_to(root)).replace(".rcc.d/", ".rcc:/"),
            local_path=path,
            group=f"{spec.name}/{key.removesuffix('-dark')}",
        )
        for key, (_, path) in sorted(best.items())
    ]


def photo_statistics(image: Image.Image) -> dict[str, float]:
    """Statistics that tell photographs from flat or vector art, on a 512-px-wide view.

    ``colour_entropy_bits``: entropy of the 5-bit-per-channel colour histogram;
    ``gradient_entropy_bits``: entropy of the 64-bin luminance gradient-magnitude histogram;
    ``flat_fraction``: share of pixels, at native resolution in a central 512x512 window, whose
    right and lower neighbours are exactly equal, not counting clipped white or black (rendered art
    has many such pixels, camera images almost none outside clipped highlights);
    ``transparent_fraction``: share of pixels with alpha < 255.
    """
    alpha = np.asarray(image.getchannel("A")) if image.mode in ("RGBA", "LA") else None
    rgb = image.convert("RGB")
    scale = 512 / max(rgb.size)
    native = np.asarray(rgb, dtype=np.int16)
    h, w = native.shape[:2]
    y0, x0 = max(0, h // 2 - 256), max(0, w // 2 - 256)
    centre = native[y0 : y0 + 512, x0 : x0 + 512]
    diffs = [np.abs(np.diff(centre, axis=a)).max(axis=-1) for a in (0, 1)]
    inner = centre[:-1, :-1]
    clipped = (inner.min(axis=-1) >= 250) | (inner.max(axis=-1) <= 5)
    flat = (diffs[0][:, :-1] == 0) & (diffs[1][:-1, :] == 0) & ~clipped

    small = np.asarray(rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.BILINEAR))
    q = (small >> 3).astype(np.int32)
    codes = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
    counts = np.bincount(codes.ravel(), minlength=1 << 15).astype(np.float64)
    luma = small.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    gy, gx = np.gradient(luma)
    grad_hist = np.histogram(np.hypot(gx, gy), bins=64, range=(0.0, 0.25))[0].astype(np.float64)

    def entropy(c: np.ndarray) -> float:
        p = c[c > 0] / c.sum()
        return float(-(p * np.log2(p)).sum())

    return {
        "colour_entropy_bits": round(entropy(counts), 3),
        "gradient_entropy_bits": round(entropy(grad_hist), 3),
        "flat_fraction": round(float(flat.mean()), 4),
        "transparent_fraction": round(float((alpha < 255).mean()) if alpha is not None else 0.0, 4),
    }


def looks_like_photo(stats: dict[str, float]) -> bool:
    """A first, lenient cut: rejects transparency, flat fills, few colours and smooth gradients.

    Thresholds were set on a contact sheet of all candidates. Real photos with clipped or
    out-of-focus regions overlap with rendered art on every one of these numbers, so what passes
    is reviewed by hand (:data:`EXCLUDE`, :data:`INCLUDE`).
    """
    return (
        stats["transparent_fraction"] < 0.001
        and stats["flat_fraction"] < 0.7
        and stats["colour_entropy_bits"] >= 4.0
        and stats["gradient_entropy_bits"] >= 2.0
    )


def _save_photo(image: Image.Image, out_path: Path, max_side: int) -> tuple[int, int]:
    rgb = image.convert("RGB")
    if max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.LANCZOS)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rgb.save(out_path, format="PNG", compress_level=6)
    return rgb.size


def _file_id(candidate_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", candidate_id)


def build_corpus(out: Path, debs_dir: Path | None = None, max_side: int = 2048, log=print,
                 packages_set: str = "train") -> dict:
    """Fetch the packages, keep the photographs, write images + manifest + LICENSES.md to ``out``.

    ``packages_set`` picks :data:`PACKAGES` (``"train"``), :data:`CALIBRATION_PACKAGES` (``"calibration"``)
    or :data:`WIDE_PACKAGES` (``"wide"``).
    """
    if packages_set not in PACKAGE_SETS:
        raise ValueError(f"packages_set must be one of {sorted(PACKAGE_SETS)}, got {packages_set!r}")
    specs = PACKAGE_SETS[packages_set]
    names = sorted(spec.name for spec in specs)
    photos, rejected, packages = [], [], {}
    with tempfile.TemporaryDirectory(prefix="rnr-corpus-") as tmp:
        tmp = Path(tmp)
        debs = find_debs(names, debs_dir) if debs_dir else download_debs(names, tmp / "debs")
        missing = sorted(set(names) - set(debs))
        if missing:
            raise RuntimeError(f"no .deb found for {missing} in {debs_dir or tmp / 'debs'}")
        for spec in sorted(specs, key=lambda s: s.name):
            root = tmp / "root" / spec.name
            extract_deb(debs[spec.name], root)
            for rcc_file in spec.rcc:
                unpack_rcc(root / rcc_file, root / f"{rcc_file}.d")
            version = deb_version(debs[spec.name])
            candidates = list_candidates(spec, version, root)
            kept = 0
            for cand in candidates:
                with Image.open(cand.local_path) as image:
                    image.load()
                    stats = photo_statistics(image)
                    reason = EXCLUDE.get(cand.id)
                    if reason is None and min(image.size) < spec.min_short:
                        reason = f"short side {min(image.size)} px < {spec.min_short}"
                    if reason is None and not looks_like_photo(stats) and cand.id not in INCLUDE:
                        reason = "statistics: not a photograph"
                    lic = resolve_licence(root, spec.name, cand.original_path) if reason is None else None
                    if reason is None and lic is None:
                        reason = "no licence found for this file"
                    if reason is not None:
                        rejected.append({"id": cand.id, "reason": reason, "stats": stats})
                        continue
                    file = f"images/{_file_id(cand.id)}.png"
                    width, height = _save_photo(image, out / file, max_side)
                    original_size = image.size
                kept += 1
                photos.append(
                    {
                        "id": cand.id,
                        "file": file,
                        "sha256": hashlib.sha256((out / file).read_bytes()).hexdigest(),
                        "width": width,
                        "height": height,
                        "original_width": original_size[0],
                        "original_height": original_size[1],
                        "package": cand.package,
                        "version": cand.version,
                        "original_path": cand.original_path,
                        "group": cand.group,
                        "license": lic.licence,
                        "author": lic.author,
                        "license_source": lic.source,
                        "copyright_file_license": lic.copyright_file_licence,
                        "stats": stats,
                    }
                )
            packages[spec.name] = {"version": version, "candidates": len(candidates), "kept": kept}
            log(f"{spec.name} {version}: {kept} photos kept of {len(candidates)} images")
    manifest = {
        "format": "rnr-photo-corpus/1",
        "set": packages_set,
        "max_side": max_side,
        "packages": packages,
        "photos": sorted(photos, key=lambda p: p["id"]),
        "rejected": sorted(rejected, key=lambda r: r["id"]),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "LICENSES.md").write_text(licences_markdown(manifest), encoding="utf-8")
    return manifest


def load_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no {MANIFEST_NAME} in {folder}: build the corpus first with "
            "`python -m training.data.corpus --out DIR`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def licences_markdown(manifest: dict) -> str:
    """A LICENSES.md summarising packages, licences and every kept photo of a manifest."""
    photos = manifest["photos"]
    photo_set = manifest.get("set", "train")
    command = ("python -m training.data.corpus --out data/corpus" if photo_set == "train"
               else f"python -m training.data.corpus --set {photo_set} --out {DEFAULT_OUT[photo_set]}")
    titles = {
        "train": "# Clean-photo corpus: sources and licences",
        "calibration": "# Calibration photos (lite reasoner thresholds): sources and licences",
        "wide": "# Clean-photo corpus, wide set (more training photos): sources and licences",
        "wide2": "# Clean-photo corpus, second wide set (more training photos): sources and licences",
    }
    release = sorted({spec.suite or "bookworm" for spec in PACKAGE_SETS.get(photo_set, PACKAGES)})
    lines = [
        titles[photo_set],
        "",
        f"Generated by `{command}` from Debian ({', '.join(release)}) packages.",
        "The photos themselves are not in the repository; the script re-creates them. Each photo keeps",
        "its original licence; the licence text is in each package's `/usr/share/doc/<package>/copyright`",
        "(`/usr/share/common-licenses/` for GPL/LGPL).",
        "",
        "| package | version | images examined | photos kept | licences of kept photos |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for name, info in sorted(manifest["packages"].items()):
        licences = sorted({p["license"] for p in photos if p["package"] == name})
        lines.append(
            f"| {name} | {info['version']} | {info['candidates']} | {info['kept']} | {', '.join(licences) or '-'} |"
        )
    lines += ["", f"{len(photos)} photos in total.", "", "| photo | author | licence | licence stated in |", "| --- | --- | --- | --- |"]
    for p in photos:
        author = p["author"].replace("|", "/") or "-"
        lines.append(f"| `{p['original_path']}` ({p['package']}) | {author} | {p['license']} | `{p['license_source']}` |")
    lines += ["", "Excluded after review (not clean photographs):", ""]
    for r in manifest["rejected"]:
        if r["reason"] != "statistics: not a photograph":
            lines.append(f"- {r['id']}: {r['reason']}")
    n_stats = sum(r["reason"] == "statistics: not a photograph" for r in manifest["rejected"])
    lines += [f"- {n_stats} more images rejected by the photo statistics (vector, gradient or abstract art).", ""]
    return "\n".join(lines)


def export_samples(src: Path, out: Path, long_side: int = 768, quality: int = 88) -> list[dict]:
    """Write the :data:`SAMPLES` photos of the corpus at ``src`` as small JPEGs into ``out``."""
    by_id = {p["id"]: p for p in load_manifest(src)["photos"]}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, photo_id in sorted(SAMPLES.items()):
        if photo_id not in by_id:
            raise KeyError(f"sample {name!r}: photo {photo_id!r} is not in the corpus at {src}")
        photo = by_id[photo_id]
        with Image.open(src / photo["file"]) as image:
            rgb = image.convert("RGB")
        scale = long_side / max(rgb.size)
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.LANCZOS)
        rgb.save(out / f"{name}.jpg", format="JPEG", quality=quality, optimize=True)
        written.append({"name": f"{name}.jpg", "size": rgb.size, **photo})
        print(f"{out / (name + '.jpg')}: {rgb.size[0]}x{rgb.size[1]} from {photo['original_path']} ({photo['license']})")
    return written


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "pack":
        from training.data.pack import main as pack_main

        return pack_main(argv[1:])
    if argv and argv[0] == "samples":
        parser = argparse.ArgumentParser(prog="python -m training.data.corpus samples")
        parser.add_argument("--src", type=Path, default=Path("data/corpus"))
        parser.add_argument("--out", type=Path, default=Path("rnr/assets/samples"))
        args = parser.parse_args(argv[1:])
        export_samples(args.src, args.out)
        return 0
    parser = argparse.ArgumentParser(prog="python -m training.data.corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default data/corpus, data/corpus_calibration or data/corpus_wide by --set)")
    parser.add_argument("--set", dest="packages_set", choices=sorted(PACKAGE_SETS), default="train",
                        help="which packages: the training corpus (default), the threshold-calibration photos "
                             "or the wide set of more training photos")
    parser.add_argument("--debs", type=Path, default=None, help="use .deb files from this folder, no apt")
    parser.add_argument("--max-side", type=int, default=2048, help="long side of stored photos, pixels")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path(DEFAULT_OUT[args.packages_set])
    manifest = build_corpus(args.out, args.debs, args.max_side, packages_set=args.packages_set)
    print(f"{len(manifest['photos'])} photos written to {args.out}")
    return 0


# The package data is re-exported: it lived here before training.data.packages and is imported from here.
__all__ = ["CALIBRATION_PACKAGES", "DEFAULT_OUT", "EXCLUDE", "IMAGE_SUFFIXES", "INCLUDE", "MANIFEST_NAME", "PACKAGES",
           "PACKAGE_SETS", "SAMPLES", "WIDE_PACKAGES", "Candidate", "PackageSpec", "build_corpus", "deb_version",
           "download_debs", "export_samples", "extract_deb", "find_debs", "licences_markdown", "list_candidates",
           "load_manifest", "looks_like_photo", "main", "photo_statistics"]


if __name__ == "__main__":
    raise SystemExit(main())
