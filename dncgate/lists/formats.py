"""List files: one number a line, or CSV with a header; plain or gzip.

Readers yield every line's fate: an :class:`Entry` or a :class:`LineError` with its line number.
Nothing is dropped silently; a file that cannot be read at all raises :class:`ListFileError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
ACTIONS = frozenset({"add", "remove"})
MAX_LINE_CHARS = 4096


class ListFileError(Exception):
    """The file as a whole cannot be read (missing, corrupt gzip, not text, no number column)."""


@dataclass(frozen=True, slots=True)
class Entry:
    line: int
    number: str
    action: str = "add"
    category: str | None = None
    effective_at: str | None = None


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    text: str
    problem: str


def open_text(path: Path) -> io.TextIOWrapper:
    """Open a list file as UTF-8 text, gunzipping when it starts with the gzip magic."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
    except OSError as exc:
        raise ListFileError(f"{path}: cannot open: {exc.strerror or exc}") from None
    # The caller closes the wrapper, which closes the binary stream under it.
    raw = gzip.GzipFile(path, "rb") if magic == GZIP_MAGIC else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def read_entries(path: Path, fmt: str = "auto") -> Iterator[Entry | LineError]:
    """Every line of ``path`` as an entry or an error. ``fmt``: auto, lines or csv."""
    try:
        with open_text(path) as text:
            first = text.readline()
            kind = fmt if fmt != "auto" else _sniff(first)
            lines = _chain(first, text)
            if kind == "csv":
                yield from _csv_entries(path, lines)
            elif kind == "lines":
                yield from _line_entries(lines)
            else:
                raise ListFileError(f"{path}: unknown format {fmt!r} (auto, lines, csv)")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ListFileError(f"{path}: corrupt gzip data: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ListFileError(f"{path}: not UTF-8 text (byte {exc.start} of a chunk): is it a list file?") from None


def _chain(first: str, rest: io.TextIOWrapper) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def _sniff(first: str) -> str:
    header = first.strip().lstrip("\ufeff").lower()
    return "csv" if "," in header and "number" in header.split(",") else "lines"


def _line_entries(lines: Iterator[str]) -> Iterator[Entry | LineError]:
    for number, line in enumerate(lines, start=1):
        text = line.strip().lstrip("\ufeff")
        if not text or text.startswith("#"):
            continue
        if len(text) > MAX_LINE_CHARS:
            yield LineError(number, text[:80], f"line longer than {MAX_LINE_CHARS} characters")
        else:
            yield Entry(number, text)


def _csv_entries(path: Path, lines: Iterator[str]) -> Iterator[Entry | LineError]:
    reader = csv.reader(lines)
    try:
        header = [h.strip().lstrip("\ufeff").lower() for h in next(reader)]
    except StopIteration:
        return
    if "number" not in header:
        raise ListFileError(f"{path}: CSV header has no 'number' column: {header}")
    index = {name: header.index(name) for name in ("number", "action", "category", "effective_at") if name in header}
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield LineError(line, ",".join(row)[:80], f"{len(row)} fields, header has {len(header)}")
            continue
        action = row[index["action"]].strip().lower() if "action" in index else "add"
        if action not in ACTIONS:
            yield LineError(line, ",".join(row)[:80], f"action {action!r} is not add or remove")
            continue
        yield Entry(
            line=line,
            number=row[index["number"]].strip(),
            action=action,
            category=row[index["category"]].strip() or None if "category" in index else None,
            effective_at=row[index["effective_at"]].strip() or None if "effective_at" in index else None,
        )
