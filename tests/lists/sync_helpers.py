"""Build snapshot/delta files and manifests the way a national platform publishes them."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

from dncgate.lists.manifest import FileEntry, ListManifest, file_entry, sign

BASE = 12015550000  # +1 201 555 xxxx


def numbers(start: int, count: int) -> list[int]:
    return [BASE + i for i in range(start, start + count)]


def write_snapshot(directory: Path, sequence: int, items: Iterable[int], *, gz: bool = True) -> FileEntry:
    path = directory / f"full-{sequence}.txt{'.gz' if gz else ''}"
    data = "".join(f"+{n}\n" for n in items).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return file_entry(path, sequence, "lines")


def write_delta(directory: Path, sequence: int, adds: Iterable[int] = (), removes: Iterable[int] = ()) -> FileEntry:
    path = directory / f"delta-{sequence}.csv"
    lines = ["number,action,category,effective_at"]
    lines += [f"+{n},add,," for n in adds] + [f"+{n},remove,," for n in removes]
    path.write_text("\n".join(lines) + "\n")
    return file_entry(path, sequence, "csv")


def write_manifest(
    directory: Path, snapshot: FileEntry | None, deltas: Iterable[FileEntry] = (), *, name: str = "manifest.json",
    list_name: str = "national", private_key: bytes | None = None,
) -> Path:
    path = directory / name
    raw = ListManifest(list_name, "2026-11-27T00:00:00+00:00", snapshot, tuple(deltas)).to_bytes()
    path.write_bytes(raw)
    if private_key is not None:
        (directory / (name + ".sig")).write_bytes(sign(raw, private_key))
    return path
