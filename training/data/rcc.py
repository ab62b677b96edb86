"""Read the files inside a compiled Qt resource (``.rcc``), as GCompris ships its activity photos.

Layout (all integers big-endian): the magic ``qres``, then ``version``, ``tree_offset``,
``data_offset``, ``names_offset`` (u32 each; version 3 adds a u32 of flags). The tree is an array of
nodes of 14 bytes (version 1) or 22 bytes (version 2 and 3, which add a u64 modification time):
``name_offset`` (u32), ``flags`` (u16: 2 = directory, 1 = zlib, 4 = zstd), then for a directory
``child_count`` and ``first_child`` (u32 each) and for a file ``territory``/``language`` (u16 each)
and ``data_offset`` (u32). A name is ``length`` (u16), a hash (u32) and ``length`` UTF-16 units; a
file's data is its size (u32) and its bytes, zlib ones after a u32 of the uncompressed size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

DIRECTORY, ZLIB, ZSTD = 2, 1, 4


def read_rcc(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield ``(path, contents)`` for every file in the resource, depth first; paths start with ``/``."""
    if data[:4] != b"qres":
        raise ValueError(f"not a Qt resource file: magic {data[:4]!r}, expected b'qres'")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    if version not in (1, 2, 3):
        raise ValueError(f"Qt resource format version {version} is not supported (1, 2 or 3)")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        return data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[base : base + 6])
        name = name_at(name_offset) if index else ""
        if flags & DIRECTORY:
            count, first = struct.unpack(">II", data[base + 6 : base + 14])
            for child in range(first, first + count):
                yield from walk(child, f"{prefix}{name}/")
            return
        (offset,) = struct.unpack(">I", data[base + 10 : base + 14])
        (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & ZLIB:
            blob = zlib.decompress(blob[4:])
        elif flags & ZSTD:
            raise ValueError(f"{prefix}{name} is zstd-compressed, which this reader does not decode")
        yield f"{prefix}{name}", blob

    yield from walk(0, "")


def unpack_rcc(rcc_file: Path, dest: Path) -> list[Path]:
    """Write every file of ``rcc_file`` under ``dest`` (keeping its resource path); returns the paths."""
    written = []
    for path, blob in read_rcc(Path(rcc_file).read_bytes()):
        target = dest / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        written.append(target)
    return written
