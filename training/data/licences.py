"""Who made each corpus photo and under which licence, read from the files Debian ships.

Three sources of truth, most specific first:
- KDE wallpapers carry a ``metadata.json`` with ``KPlugin.License`` and ``KPlugin.Authors``;
- scikit-image documents each sample image in the docstring of its loader in
  ``skimage/data/_fetchers.py``;
- KDE's jigsaw puzzles (palapeli) carry a ``.desktop`` file beside each photo with
  ``X-KDE-PluginInfo-License`` and ``X-KDE-PluginInfo-Author``;
- GCompris credits each photo of an activity in a ``README`` beside it inside its Qt resource
  (blocks of ``Copyright:``, ``License:``, ``Source:`` and ``Files:``);
- scikit-learn documents its two sample photos in ``sklearn/datasets/images/README.txt``;
- most packages have a machine-readable ``/usr/share/doc/<pkg>/copyright`` (DEP-5), whose
  ``Files:`` paragraphs are matched against the installed path (last match wins, as DEP-5 says);
- a free-form copyright file counts only when it grants the whole package under the GPL in the
  standard words ("version 2 of the License, or (at your option) any later version"), with the
  ``Upstream Author`` as author (KPhotoAlbum's demo photos).
An image for which none of these gives a licence is never kept.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Licence:
    """The licence of one image. ``licence`` is an SPDX-like short name."""

    licence: str
    author: str
    source: str
    copyright_file_licence: str


_SPDX = {
    "LGPLv3": "LGPL-3.0",
    "LGPL3": "LGPL-3.0",
    "GPLv2+": "GPL-2+",
    "CC-BY-SA 4.0": "CC-BY-SA-4.0",
    "FDL": "GFDL",
    "GNU-FDL": "GFDL",
    "Public Domain": "public-domain",
    "Public domain": "public-domain",
    "CC-BY-SA 3.0": "CC-BY-SA-3.0",
    "GPLv3": "GPL-3",
}


def _normalise(name: str) -> str:
    name = name.strip()
    return _SPDX.get(name, name)


def parse_dep5(text: str) -> list[dict[str, str]]:
    """Split a DEP-5 copyright file into paragraphs of ``{field: value}`` (continuations joined)."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_field = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last_field = {}, None
        elif line[0] in " \t" and last_field is not None:
            current[last_field] += "\n" + line.strip()
        elif ":" in line:
            field, _, value = line.partition(":")
            last_field = field.strip()
            current[last_field] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def _pattern_matches(pattern: str, installed_path: str) -> bool:
    if pattern == "*":
        return True
    if fnmatch.fnmatchcase(installed_path, "*/" + pattern):
        return True
    # Packages often install a file from upstream dir ``16.04/x.jpg`` as ``backgrounds/x.jpg``.
    base = PurePosixPath(pattern).name
    return base != "*" and "*" not in base and PurePosixPath(installed_path).name == base


def _author_from_copyright(copyright_text: str) -> str:
    authors = []
    for line in copyright_text.splitlines():
        line = re.sub(r"^(copyright\s*)?(\(c\)|©)?\s*", "", line.strip(), flags=re.IGNORECASE)
        line = re.sub(r"^[\d\s,.\-]+", "", line)
        line = re.sub(r",\s*\d{4}$", "", line).strip(" ´'")
        if line and line.lower() != "*no copyright*":
            authors.append(line)
    return "; ".join(authors)


def licence_from_dep5(copyright_text: str, installed_path: str) -> tuple[str, str] | None:
    """``(licence, author)`` of the last ``Files:`` paragraph matching ``installed_path``."""
    found = None
    for paragraph in parse_dep5(copyright_text):
        patterns = paragraph.get("Files", "").split()
        if patterns and any(_pattern_matches(p, installed_path) for p in patterns):
            licence = paragraph.get("License", "").splitlines()[0] if paragraph.get("License") else ""
            found = (_normalise(licence), _author_from_copyright(paragraph.get("Copyright", "")))
    return found


def licence_from_plasma_metadata(metadata_path: Path) -> tuple[str, str] | None:
    """``(licence, author)`` from a KDE wallpaper's ``metadata.json``, if it states a licence."""
    if not metadata_path.is_file():
        return None
    plugin = json.loads(metadata_path.read_text(encoding="utf-8")).get("KPlugin", {})
    if not plugin.get("License"):
        return None
    authors = "; ".join(a["Name"] for a in plugin.get("Authors", []) if a.get("Name"))
    return _normalise(plugin["License"]), authors


def licence_from_kde_desktop(desktop_path: Path) -> tuple[str, str] | None:
    """``(licence, author)`` from a KDE ``.desktop`` entry's ``X-KDE-PluginInfo-*`` keys, if it states a licence."""
    if not desktop_path.is_file():
        return None
    keys = {}
    for line in desktop_path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in ("X-KDE-PluginInfo-License", "X-KDE-PluginInfo-Author"):
            keys.setdefault(key.strip(), value.strip())
    if not keys.get("X-KDE-PluginInfo-License"):
        return None
    return _normalise(keys["X-KDE-PluginInfo-License"]), keys.get("X-KDE-PluginInfo-Author", "")


def licence_from_skimage_docstring(fetchers_py: Path, file_name: str) -> tuple[str, str] | None:
    """``(licence, author)`` from the docstring of the scikit-image loader of ``data/<file_name>``."""
    source = fetchers_py.read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        if f'"data/{file_name}"' not in (ast.get_source_segment(source, node) or ""):
            continue
        doc = " ".join((ast.get_docstring(node) or "").split())
        if re.search(r"\bCC0\b", doc):
            licence = "CC0-1.0"
        elif re.search(r"public domain", doc, re.IGNORECASE):
            licence = "public-domain"
        else:
            return None
        author = re.search(r"photographer \(([^)]+)\)|captured by (\w+)|downloaded from the (NASA)\b", doc)
        return licence, (next(g for g in author.groups() if g) if author else "")
    return None


def licence_from_sklearn_readme(readme: Path, file_name: str) -> tuple[str, str] | None:
    """``(licence, author)`` of ``file_name`` from scikit-learn's ``datasets/images/README.txt``.

    Each block is ``Image: NAME`` followed by numbered links: the Creative Commons licence URL and the
    photo's Flickr page, whose user name is taken as the author (the README's own "Attribution"
    line names the same user for both photos, the Flickr page does not).
    """
    if not readme.is_file():
        return None
    blocks = re.split(r"^Image:\s*", readme.read_text(encoding="utf-8", errors="replace"), flags=re.MULTILINE)
    for block in blocks[1:]:
        if block.split(None, 1)[0] != file_name:
            continue
        cc = re.search(r"creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)", block)
        if not cc:
            return None
        users = re.findall(r"flickr\.com/photos/([^/\s]+)/\d+", block)
        return f"CC-{cc[1].upper()}-{cc[2]}", (f"{users[0]} (Flickr)" if users else "")
    return None


def licence_from_gcompris_readme(readme: Path, relative_name: str) -> tuple[str, str, str] | None:
    """``(licence, author, source URL)`` of ``relative_name`` (relative to the README's folder) from a
    GCompris resource README: blank-line separated blocks whose ``Files:`` list names the file."""
    if not readme.is_file():
        return None
    for block in re.split(r"\n\s*\n", readme.read_text(encoding="utf-8", errors="replace")):
        fields, files, in_files = {}, [], False
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("Copyright", "License", "Source", "Comments", "Files") and not line[0].isspace():
                in_files = key.strip() == "Files"
                fields[key.strip()] = value.strip()
                if in_files and value.strip():
                    files.append(value.strip())
            elif in_files and line.strip():
                files.append(line.strip())
        if relative_name in files and fields.get("License"):
            author = re.sub(r"^©\s*(\d{4}\s*)?", "", fields.get("Copyright", "")).strip()
            return _normalise(fields["License"]), author, fields.get("Source", "")
    return None


def licence_from_plain_gpl(copyright_text: str) -> tuple[str, str] | None:
    """``("GPL-2+", author)`` from a free-form copyright file that grants the package under GPL 2 or later."""
    text = " ".join(copyright_text.split())
    if not re.search(r"GNU General Public License as published by the Free Software Foundation; "
                     r"either version 2 of the License, or \(at your option\) any later version", text):
        return None
    author = re.search(r"Upstream Authors?:\s*(.+?)\s*(?:<|Copyright:)", text)
    return "GPL-2+", (author[1] if author else "")


def resolve_licence(root: Path, package: str, installed_path: str) -> Licence | None:
    """The licence of ``installed_path`` inside the package tree extracted at ``root``."""
    copyright_file = root / "usr/share/doc" / package / "copyright"
    text = copyright_file.read_text(encoding="utf-8", errors="replace") if copyright_file.is_file() else ""
    dep5 = licence_from_dep5(text, installed_path) if text.startswith("Format:") else None
    dep5_licence = dep5[0] if dep5 else ""
    local = root / installed_path.lstrip("/").replace(".rcc:/", ".rcc.d/")
    if ".rcc:/" in installed_path:
        # Only the README inside the resource counts: the package's copyright file lists older file names.
        rcc_file = installed_path.split(".rcc:/")[0] + ".rcc"
        for folder in local.parents:
            found = licence_from_gcompris_readme(folder / "README", str(local.relative_to(folder)))
            if found:
                readme = (folder / "README").relative_to(root / (rcc_file.lstrip("/") + ".d"))
                return Licence(found[0], found[1], f"{rcc_file}:/{readme} (original: {found[2]})", dep5_licence)
            if folder.name == "resource" or folder.name.endswith(".rcc.d"):
                break
        return None
    if "/wallpapers/" in installed_path and "/contents/" in installed_path:
        metadata = local.parents[2] / "metadata.json"
        found = licence_from_plasma_metadata(metadata)
        if found:
            rel = "/" + str(metadata.relative_to(root))
            return Licence(found[0], found[1], f"{rel} (KPlugin.License)", dep5_licence)
    if "/palapeli/collection/" in installed_path:
        desktop = local.with_suffix(".desktop")
        found = licence_from_kde_desktop(desktop)
        if found:
            rel = "/" + str(desktop.relative_to(root))
            return Licence(found[0], found[1], f"{rel} (X-KDE-PluginInfo-License)", dep5_licence)
    if "/skimage/data/" in installed_path:
        fetchers = local.parent / "_fetchers.py"
        found = licence_from_skimage_docstring(fetchers, local.name) if fetchers.is_file() else None
        if found:
            rel = "/" + str(fetchers.relative_to(root))
            return Licence(found[0], found[1], f"{rel} (loader docstring)", dep5_licence)
    if "/sklearn/datasets/images/" in installed_path:
        readme = local.parent / "README.txt"
        found = licence_from_sklearn_readme(readme, local.name)
        if found:
            rel = "/" + str(readme.relative_to(root))
            return Licence(found[0], found[1], rel, dep5_licence)
    if dep5 and dep5[0]:
        return Licence(dep5[0], dep5[1], f"/usr/share/doc/{package}/copyright", dep5_licence)
    if text and not text.startswith("Format:"):
        found = licence_from_plain_gpl(text)
        if found:
            return Licence(found[0], found[1], f"/usr/share/doc/{package}/copyright (whole package)", found[0])
    return None
