"""List files: one number a line, CSV with a header, the US FTC download, the UK TPS file;
plain, gzip, or zip (every member, in name order).

Readers yield every line's fate: an :class:`Entry` or a :class:`LineError` with its line number.
Nothing is dropped silently; a file that cannot be read at all raises :class:`ListFileError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import lzma
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from dncgate.errors import ListError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
# A zip starts with a member (ZIP_MAGIC), the end record of an empty archive, or a spanning marker.
ZIP_MAGICS = (ZIP_MAGIC, b"PK\x05\x06", b"PK\x07\x08")
FORMATS = ("auto", "lines", "csv", "ftc", "tps")
ACTIONS = frozenset({"add", "remove"})
MAX_LINE_CHARS = 4096
# A compressed file or zip member may expand at most this much once past MAX_RATIO_AFTER_BYTES:
# a gzipped list of numbers is about 5:1 (consecutive numbers too), the same line repeated 500:1,
# deflate's limit (blank lines) 1030:1; bzip2 and LZMA zip members go far beyond.
MAX_RATIO = 100
MAX_RATIO_AFTER_BYTES = 16 << 20
_ZIP_ENCRYPTED = 0x1  # general purpose flag bit 0


class ListFileError(ListError):
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


def open_binary(path: Path) -> BinaryIO:
    """A list file's bytes, gunzipped when it starts with the gzip magic (at most ``MAX_RATIO``:1)."""
    if _magic(path)[:2] != GZIP_MAGIC:
        return path.open("rb")
    compressed = path.open("rb")
    inflated = _Inflated(gzip.GzipFile(fileobj=compressed, mode="rb"), compressed.tell, path, compressed.close)
    return io.BufferedReader(inflated)


def open_text(path: Path) -> io.TextIOWrapper:
    """Open a list file as UTF-8 text, gunzipping when it starts with the gzip magic."""
    # The caller closes the wrapper, which closes the binary stream under it.
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", newline="")


class _Inflated(io.RawIOBase):
    """A decompressing stream that raises ``ListFileError`` once it has expanded more than
    ``MAX_RATIO``:1 past ``MAX_RATIO_AFTER_BYTES`` (``compressed()``: the input bytes read so far)."""

    def __init__(self, stream: gzip.GzipFile, compressed: Callable[[], int], path: Path,
                 close_input: Callable[[], None]) -> None:
        self._stream, self._compressed, self._path, self._close_input = stream, compressed, path, close_input
        self._out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._stream.readinto(buffer)
        self._out += count
        if self._out > MAX_RATIO_AFTER_BYTES and self._out > MAX_RATIO * max(self._compressed(), 1):
            raise ListFileError(f"{self._path}: expands more than {MAX_RATIO}:1 ({self._out:,} bytes from "
                                f"{self._compressed():,}): refused as a compression bomb")
        return count

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._close_input()
            super().close()


# No line is read whole past this many characters: the longest a CSV field may be (the csv
# module's default limit), and well over ``MAX_LINE_CHARS``, which the other formats report.
READ_LINE_CHARS = 128 * 1024


def bounded_lines(text: io.TextIOWrapper) -> Iterator[str]:
    """The lines of ``text`` with their ends, none longer than ``READ_LINE_CHARS`` + 2 characters:
    a longer line is cut there, without its end, and the rest of it read and dropped, so that no
    line is ever whole in memory (``cut_line`` is true of it)."""
    limit = READ_LINE_CHARS + 2  # room for "\r\n"
    while line := text.readline(limit):
        if cut_line(line):
            while (rest := text.readline(1 << 16)) and not rest.endswith(("\n", "\r")):
                pass
        yield line


def cut_line(line: str) -> bool:
    """Whether :func:`bounded_lines` cut this line (it was longer than ``READ_LINE_CHARS``)."""
    return len(line) == READ_LINE_CHARS + 2 and not line.endswith("\n")


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as probe:
            return probe.read(4)
    except OSError as exc:
        raise ListFileError(f"{path}: cannot open: {exc.strerror or exc}") from None


def _members(path: Path, stack: ExitStack) -> Iterator[tuple[str, io.TextIOWrapper]]:
    """``("", text)`` for a plain or gzip file; ``(member name, text)`` for each file in a zip."""
    if _magic(path)[:4] not in ZIP_MAGICS:
        yield "", stack.enter_context(open_text(path))
        return
    archive = stack.enter_context(zipfile.ZipFile(path))
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        if info.is_dir():
            continue
        if info.flag_bits & _ZIP_ENCRYPTED:
            raise ListFileError(f"{path}: zip member {info.filename!r} is encrypted: cannot be read")
        if info.file_size > MAX_RATIO_AFTER_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ListFileError(f"{path}: zip member {info.filename!r} expands more than {MAX_RATIO}:1 ("
                                f"{info.file_size:,} bytes from {info.compress_size:,}): refused as a compression bomb")
        try:
            member = archive.open(info)
        except (NotImplementedError, RuntimeError) as exc:  # an unsupported compression method, say
            raise ListFileError(f"{path}: zip member {info.filename!r} cannot be read: {exc}") from None
        with io.TextIOWrapper(member, encoding="utf-8", newline="") as text:
            yield info.filename, text


def read_entries(path: Path, fmt: str = "auto") -> Iterator[Entry | LineError]:
    """Every line of ``path`` as an entry or an error. ``fmt``: one of ``FORMATS``."""
    if fmt not in FORMATS:
        raise ListFileError(f"{path}: unknown format {fmt!r} ({', '.join(FORMATS)})")
    try:
        with ExitStack() as stack:
            for member, text in _members(path, stack):
                lines = bounded_lines(text)
                first = next(lines, "")
                kind = fmt if fmt != "auto" else _sniff(first)
                entries = _parse(kind, path, _chain(first, lines))
                for entry in entries:
                    if member and isinstance(entry, LineError):
                        entry = LineError(entry.line, entry.text, f"{member}: {entry.problem}")
                    yield entry
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ListFileError(f"{path}: corrupt gzip data: {exc}") from None
    except zipfile.BadZipFile as exc:
        raise ListFileError(f"{path}: corrupt zip archive: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ListFileError(f"{path}: not UTF-8 text (byte {exc.start} of a chunk): is it a list file?") from None
    except (lzma.LZMAError, NotImplementedError) as exc:  # a corrupt LZMA member; a member needing a missing codec
        raise ListFileError(f"{path}: corrupt or unsupported compressed data: {exc}") from None
    except OSError as exc:  # a corrupt bzip2 member, or the file itself failing to read
        raise ListFileError(f"{path}: cannot read: {exc}") from None


def _parse(kind: str, path: Path, lines: Iterator[str]) -> Iterator[Entry | LineError]:
    if kind == "csv":
        return _csv_entries(path, lines)
    if kind == "ftc":
        from dncgate.lists.formats_ftc import ftc_entries

        return ftc_entries(lines)
    if kind == "tps":
        from dncgate.lists.formats_tps import tps_entries

        return tps_entries(lines)
    return _line_entries(lines)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
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
    def whole(numbered: Iterator[str]) -> Iterator[str]:
        # csv never sees a cut line (it could read a valid-looking record in it): as csv itself would.
        for number, line in enumerate(numbered, start=1):
            if cut_line(line):
                raise ListFileError(f"{path}: line {number}: unreadable CSV: field larger than field limit "
                                    f"({READ_LINE_CHARS}): the line has more characters")
            yield line

    reader = csv.reader(whole(lines))
    try:
        header = [h.strip().lstrip("\ufeff").lower() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise ListFileError(f"{path}: line {reader.line_num}: unreadable CSV header: {exc}") from None
    if "number" not in header:
        raise ListFileError(f"{path}: CSV header has no 'number' column: {header}")
    index: dict[str, int] = {
        name: header.index(name) for name in ("number", "action", "category", "effective_at") if name in header
    }
    try:
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
            effective_at = row[index["effective_at"]].strip() or None if "effective_at" in index else None
            if effective_at is not None and not _is_time(effective_at):
                yield LineError(line, ",".join(row)[:80], f"effective_at {effective_at!r} is not an ISO 8601 time")
                continue
            yield Entry(
                line=line,
                number=row[index["number"]].strip(),
                action=action,
                category=row[index["category"]].strip() or None if "category" in index else None,
                effective_at=effective_at,
            )
    except csv.Error as exc:  # a field over csv.field_size_limit(), say: the rest cannot be trusted
        raise ListFileError(f"{path}: line {reader.line_num}: unreadable CSV: {exc}") from None


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
