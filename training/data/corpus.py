"""Assemble a corpus of freely licensed clean photographs from Debian packages.

    python -m training.data.corpus --out data/corpus            # fetch, filter, write photos + manifest
    python -m training.data.corpus --set calibration --out data/corpus_calibration
    python -m training.data.corpus --set wide --out data/corpus_wide   # more training photos
    python -m training.data.corpus --set wide2 --out data/corpus_wide2 # more, from Debian trixie
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
``--set wide2`` does it for :data:`~training.data.packages.WIDE2_PACKAGES`, whose specs name another
Debian ``suite`` (trixie) than this machine's: those ``.deb`` files come not from apt but from the
archive itself (:func:`download_suite_debs`) along a verified chain of trust: ``dists/<suite>/InRelease``
checked by ``gpgv`` against Debian's archive keyring, the ``main`` ``Packages.xz`` index checked
against the SHA256 list of that signed text, and the ``.deb`` checked against the index's SHA256. Any
failed check refuses the file; ``--debs DIR`` (with the ``.deb`` files already there) skips all downloads.

The output is deterministic: packages, candidates and photos are processed in sorted order.
The package lists and the hand-review tables are data in :mod:`training.data.packages`.
The second command is :mod:`training.data.pack`; the third re-creates the sample photos shipped
in ``rnr/assets/samples`` (:data:`SAMPLES`).
"""

from __future__ import annotations

import argparse
import datetime
import email.utils
import functools
import hashlib
import json
import lzma
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from rnr.errors import RnRError
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


DEBIAN_ARCHIVE = "http://deb.debian.org/debian"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_NO_NETWORK_HINT = "or pass --debs DIR with the .deb files already downloaded"


class ArchiveError(RnRError):
    """A package could not be fetched from a Debian suite, or a file failed its signature or hash check."""


def _sh(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def download_debs(names: list[str], dest: Path, suite: str = "", *, base_url: str = DEBIAN_ARCHIVE,
                  keyring: Path | str = DEBIAN_KEYRING, log=print) -> dict[str, Path]:
    """Download each package's ``.deb`` into ``dest``; returns ``{package: .deb path}``.

    Without ``suite``: ``apt-get download`` (this machine's own release). With one (``"trixie"``):
    from that suite of the Debian archive at ``base_url`` through its signed index
    (:func:`download_suite_debs`), every file checked against the signed hashes.
    """
    if suite:
        return download_suite_debs(names, suite, dest, base_url=base_url, keyring=keyring, log=log)
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


def fetch_debs(specs: tuple[PackageSpec, ...] | list[PackageSpec], dest: Path, *, base_url: str = DEBIAN_ARCHIVE,
               keyring: Path | str = DEBIAN_KEYRING, log=print) -> dict[str, Path]:
    """The ``.deb`` of every spec in ``dest``: plain specs by ``apt-get download``, specs with a
    ``suite`` from that suite's signed index (one :func:`download_debs` call per suite)."""
    by_suite: dict[str, list[str]] = {}
    for spec in specs:
        by_suite.setdefault(spec.suite, []).append(spec.name)
    debs: dict[str, Path] = {}
    for suite, names in sorted(by_suite.items()):
        debs.update(download_debs(sorted(names), dest, suite, base_url=base_url, keyring=keyring, log=log))
    return debs


# --- Packages of another Debian suite, through the archive's signed index ---------------------------

def parse_release_sha256(release_text: str) -> dict[str, tuple[str, int]]:
    """The ``SHA256:`` section of a Debian ``Release``/``InRelease`` text: ``{path: (sha256, size)}``.

    Only the section's own lines (indented ``<hash> <size> <path>``) are read; other hash sections
    (``MD5Sum:``) and fields are ignored. Raises :class:`ArchiveError` when there is no such section
    or a line of it is malformed.
    """
    entries: dict[str, tuple[str, int]] = {}
    in_section = found = False
    for line in release_text.splitlines():
        if line[:1] in (" ", "\t"):
            if in_section:
                parts = line.split()
                if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]) or not parts[1].isdigit():
                    raise ArchiveError(f"malformed line in the Release file's SHA256 section: {line.strip()!r}")
                entries[parts[2]] = (parts[0], int(parts[1]))
            continue
        in_section = line.rstrip() == "SHA256:"
        found = found or in_section
    if not found:
        raise ArchiveError("the Release file has no SHA256 section (only weaker hashes?); refusing to trust it")
    return entries


def release_fields(release_text: str) -> dict[str, str]:
    """The single-line fields of a ``Release`` text (``Codename``, ``Suite``, ``Valid-Until`` ...)."""
    fields = {}
    for line in release_text.splitlines():
        if line[:1] not in (" ", "\t", "") and ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def parse_stanzas(text: str, package: str | None = None) -> list[dict[str, str]]:
    """The paragraphs of a Debian control-style text (``Packages``) as field dicts.

    Continuation lines are joined to their field with newlines. With ``package``, only paragraphs
    whose ``Package`` field is that name (a quick substring test skips the rest).
    """
    stanzas = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        if package is not None and f"Package: {package}\n" not in block + "\n":
            continue
        fields: dict[str, str] = {}
        key = None
        for line in block.split("\n"):
            if not line.strip():
                continue
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields and (package is None or fields.get("Package") == package):
            stanzas.append(fields)
    return stanzas


def compare_debian_versions(a: str, b: str) -> int:
    """Negative, zero or positive as Debian version ``a`` is older than, equal to or newer than ``b``:
    dpkg's own order (``dpkg --compare-versions``; dpkg unpacks the packages anyway)."""
    if _sh(["dpkg", "--compare-versions", a, "eq", b]).returncode == 0:
        return 0
    return -1 if _sh(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0 else 1


def find_package_stanza(packages_text: str, package: str) -> dict[str, str] | None:
    """The stanza of ``package`` in a ``Packages`` text, the newest version if several; ``None`` if absent.

    Raises :class:`ArchiveError` when the stanza lacks ``Version``, ``Filename`` or ``SHA256``.
    """
    stanzas = parse_stanzas(packages_text, package)
    if not stanzas:
        return None
    for stanza in stanzas:
        lacking = [f for f in ("Version", "Filename", "SHA256") if not stanza.get(f)]
        if lacking:
            raise ArchiveError(f"the Packages index's stanza of {package} has no {', '.join(lacking)} field")
    return max(stanzas, key=functools.cmp_to_key(lambda x, y: compare_debian_versions(x["Version"], y["Version"])))


def _fetch(url: str, out: Path, sha256: str, size: int | None, what: str) -> Path:
    """Download ``url`` to ``out`` (through ``out.part``), refusing it unless its SHA256 (and size) match."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    digest, n_bytes = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=120) as response, open(part, "wb") as f:
            while chunk := response.read(1 << 20):
                n_bytes += len(chunk)
                if size is not None and n_bytes > size:
                    break
                digest.update(chunk)
                f.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise ArchiveError(f"could not download {what} from {url}: {exc}. Check that the archive is reachable, "
                           f"{_NO_NETWORK_HINT}") from exc
    if (size is not None and n_bytes != size) or digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        got = f"more than {size} bytes" if size is not None and n_bytes > size else f"{n_bytes} bytes"
        raise ArchiveError(
            f"{what} from {url} does not match the signed index: got {got} with SHA256 "
            f"{digest.hexdigest() if size is None or n_bytes <= size else '(not computed)'}, expected "
            f"{size if size is not None else '?'} bytes with SHA256 {sha256}. The download is corrupt or was tampered "
            f"with; it was deleted. Try again later (a mirror may be mid-update), {_NO_NETWORK_HINT}"
        )
    part.replace(out)
    return out


def verified_release(suite: str, *, base_url: str = DEBIAN_ARCHIVE, keyring: Path | str = DEBIAN_KEYRING,
                     work: Path) -> str:
    """Download ``dists/<suite>/InRelease`` into ``work``, verify its signature with ``gpgv`` against
    ``keyring`` and return the signed text (as gpgv wrote it, so nothing outside the signature is read).

    Refuses (:class:`ArchiveError`) when gpgv or the keyring is missing, no signature is good, any is bad,
    or the Release names another suite.
    """
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise ArchiveError(f"gpgv is not installed, so the {suite} index cannot be verified: install it "
                           f"(apt-get install gpgv), {_NO_NETWORK_HINT}")
    keyring = Path(keyring).resolve()
    if not keyring.is_file():
        raise ArchiveError(f"the keyring {keyring} does not exist: install Debian's archive keys "
                           f"(apt-get install debian-archive-keyring), {_NO_NETWORK_HINT}")
    url = f"{base_url.rstrip('/')}/dists/{suite}/InRelease"
    signed, plain = work / f"{suite}_InRelease", work / f"{suite}_Release"
    signed.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            signed.write_bytes(response.read(64 << 20))
    except (urllib.error.URLError, OSError) as exc:
        raise ArchiveError(f"could not download the {suite} index {url}: {exc}. Check the suite name and that "
                           f"the archive is reachable, {_NO_NETWORK_HINT}") from exc
    plain.unlink(missing_ok=True)
    result = subprocess.run(
        [gpgv, "--keyring", str(keyring), "--status-fd", "1", "--output", str(plain), str(signed)],
        capture_output=True, text=True, check=False,
    )
    status = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("[GNUPG:] ") and
              len(line.split()) > 1]
    bad = [s for s in status if s in ("BADSIG", "EXPKEYSIG", "REVKEYSIG")]
    if bad or "VALIDSIG" not in status or not plain.is_file():
        why = (f"a bad signature ({', '.join(sorted(set(bad)))})" if bad
               else "no valid signature by a key in the keyring")
        raise ArchiveError(
            f"refusing the {suite} index {url}: gpgv found {why} (gpgv exit {result.returncode}: "
            f"{result.stderr.strip()[-300:]}). It may be tampered with or signed by keys newer than {keyring}: "
            f"update debian-archive-keyring, {_NO_NETWORK_HINT}"
        )
    text = plain.read_text(encoding="utf-8", errors="replace")
    fields = release_fields(text)
    if suite not in (fields.get("Codename"), fields.get("Suite")):
        raise ArchiveError(f"the signed index at {url} is for suite {fields.get('Suite')!r} / codename "
                           f"{fields.get('Codename')!r}, not {suite!r}; refusing it ({_NO_NETWORK_HINT})")
    valid_until = fields.get("Valid-Until")
    if valid_until:
        expiry = email.utils.parsedate_to_datetime(valid_until)
        if expiry < datetime.datetime.now(datetime.timezone.utc):
            raise ArchiveError(f"the signed {suite} index at {url} expired on {valid_until} (a stale mirror?); "
                               f"try again later or another mirror, {_NO_NETWORK_HINT}")
    return text


def suite_stanzas(release_text: str, names: list[str], suite: str, *, base_url: str = DEBIAN_ARCHIVE,
                  work: Path, architectures: tuple[str, ...] = ("all", "amd64"), log=print) -> dict[str, dict[str, str]]:
    """The ``Packages`` stanza (newest version) of each package in ``names``, from the ``main`` indices of
    ``architectures`` in turn (``Architecture: all`` first), each index checked against the Release's SHA256
    list (fetched by hash where the Release offers it, else, or when that fails, by name).

    An index that cannot be fetched or fails its check is never read: the next architecture's is tried
    (Debian's per-architecture indices list the ``all`` packages too) and ``log`` says so. Raises
    :class:`ArchiveError` naming the packages and the suite when some are in no verified index, with the
    reasons of the indices that were refused.
    """
    hashes = parse_release_sha256(release_text)
    by_hash = release_fields(release_text).get("Acquire-By-Hash", "").lower() == "yes"
    found: dict[str, dict[str, str]] = {}
    refused: list[str] = []
    for arch in architectures:
        remaining = [n for n in names if n not in found]
        if not remaining:
            break
        path = f"main/binary-{arch}/Packages.xz"
        if path not in hashes:
            refused.append(f"{path} is not listed in the signed Release")
            continue
        sha256, size = hashes[path]
        urls = [f"{base_url.rstrip('/')}/dists/{suite}/{path}"]
        if by_hash:
            urls.insert(0, f"{base_url.rstrip('/')}/dists/{suite}/main/binary-{arch}/by-hash/SHA256/{sha256}")
        index = None
        for url in urls:
            try:
                index = _fetch(url, work / f"{suite}_{arch}_Packages.xz", sha256, size, f"the {suite} index {path}")
                break
            except ArchiveError as exc:
                error = exc
        if index is None:
            refused.append(str(error))
            if log is not None:
                log(f"skipping the {suite} index {path}: {error}")
            continue
        try:
            text = lzma.decompress(index.read_bytes()).decode("utf-8", errors="replace")
        except lzma.LZMAError as exc:
            raise ArchiveError(f"the {suite} index {path} matches its signed hash but is not valid xz: {exc}") from exc
        for name in remaining:
            stanza = find_package_stanza(text, name)
            if stanza is not None:
                found[name] = stanza
    missing = [n for n in names if n not in found]
    if missing:
        raise ArchiveError(
            f"package(s) {', '.join(missing)} not found in Debian {suite} (main, architectures "
            f"{', '.join(architectures)}) at {base_url}"
            + (f"; indices refused: {' | '.join(refused)}" if refused else "")
            + f". Check the name and the suite in training/data/packages.py, {_NO_NETWORK_HINT}"
        )
    return found


def download_suite_debs(names: list[str], suite: str, dest: Path, *, base_url: str = DEBIAN_ARCHIVE,
                        keyring: Path | str = DEBIAN_KEYRING, log=print) -> dict[str, Path]:
    """Download the newest ``.deb`` of each package of Debian ``suite`` into ``dest`` with a verified chain of
    trust: ``InRelease`` signature (gpgv, ``keyring``) -> SHA256 of ``Packages.xz`` -> SHA256 of the ``.deb``.
    Returns ``{package: .deb path}``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rnr-suite-") as work:
        work = Path(work)
        release = verified_release(suite, base_url=base_url, keyring=keyring, work=work)
        stanzas = suite_stanzas(release, names, suite, base_url=base_url, work=work, log=log)
    return {name: fetch_stanza_deb(stanzas[name], suite, dest, base_url=base_url) for name in names}


def fetch_stanza_deb(stanza: dict[str, str], suite: str, dest: Path, *, base_url: str = DEBIAN_ARCHIVE) -> Path:
    """Download the ``.deb`` a ``Packages`` stanza names into ``dest``, checked against its SHA256 (and Size)."""
    name, filename = stanza["Package"], stanza["Filename"]
    file = Path(filename).name
    if not filename.startswith("pool/") or ".." in filename.split("/") or not re.fullmatch(
            rf"{re.escape(name)}_[^/]+\.deb", file):
        raise ArchiveError(f"the {suite} index gives {name} an unexpected Filename {filename!r}; refusing it")
    size = int(stanza["Size"]) if stanza.get("Size", "").isdigit() else None
    return _fetch(f"{base_url.rstrip('/')}/{filename}", dest / file, stanza["SHA256"].lower(), size,
                  f"{file} ({name} {stanza['Version']} of {suite})")


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
        debs = find_debs(names, debs_dir) if debs_dir else fetch_debs(specs, tmp / "debs", log=log)
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
