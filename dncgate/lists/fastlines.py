"""Fast path for full snapshots in the one-number-a-line format (plain or gzip).

``read_entries`` + ``number_of`` cost 2-5 us a line (text decoding, an ``Entry`` per line), about
5 minutes for a 100M-line national snapshot. Here the file is read in binary chunks cut at a
newline, and a chunk whose every line is a plain ``+E.164`` (``+`` and 8-15 ASCII digits, a
known country code) is checked with a few C-level scans of the whole chunk and converted with
``int`` into an ``array('q')``; one search of the chunk finds the lines phonenumbers does not find
valid (``lists.validity``: its patterns as one regular expression) and one more the national
numbers that may start with a prefix phonenumbers strips (a trunk ``0`` after ``+44``): those take
``number_of`` and its full normalisation, so the fast path accepts and refuses what it does. Any
other line goes through exactly the per-line path of ``read_entries``/``parse_file`` (strip, BOM,
comments, over-long lines, ``number_of``), so every bad line is reported with its line number and
the same problem text.

Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``, like the text reader: a chunk with a lone ``\\r``
is handled line by line by the text reader itself.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter, lt
from pathlib import Path
from typing import BinaryIO

from dncgate.errors import ListError
from dncgate.lists.entries import keeps_national_digits, national_prefix
from dncgate.lists.fastpool import pieces
from dncgate.lists.formats import (
    MAX_LINE_CHARS,
    ZIP_MAGICS,
    LineError,
    ListFileError,
    _magic,
    _sniff,
    open_binary,
)
from dncgate.lists.invalid import InvalidLines, InvalidShare
from dncgate.lists.validity import ANY_DIGIT, invalid_lines_search, tail_free_search, valid_digits
from dncgate.numbers import country_code_length

CHUNK_BYTES = 4 << 20
_PLAIN = b"+0123456789\n"
_FIRST3 = itemgetter(slice(1, 4))
# Lines 9-16 characters long keep at least 5 national digits: the last 4 are always national.
TAIL_DIGITS = 4
_HEAD = itemgetter(slice(0, -TAIL_DIGITS))
_ANY_TAIL = ANY_DIGIT.encode("ascii") * TAIL_DIGITS
MAX_HEADS = 1 << 20  # cached heads (~100 MB at most); a list has about one per 10,000 numbers
_UNTRUSTED = re.compile(r"\^|\\[AZbB1-9]|\(\?<|\(\?P=")


# A run without a newline this long (bytes) is an over-long line, or lines ended by lone CRs:
# either way the text reader's bounded lines, not this path, read the file (``NotFast``).
MAX_RUN_BYTES = 4 * MAX_LINE_CHARS + 64


class NotFast(ListError):
    """This file is for the per-line path (``sync.parse_entries``): nothing of it was kept."""


@dataclass
class FastParsed:
    numbers: array[int] = field(default_factory=lambda: array("q"))
    read: int = 0
    invalid: InvalidLines = field(default_factory=InvalidLines)
    ascending: bool = True  # every number below the next, in file order (no sort needed)


def applies(path: Path, fmt: str) -> bool:
    """Whether ``path`` is a plain or gzip file in the one-number-a-line format (``fmt`` ``lines``,
    or ``auto`` and the first line does not sniff as a CSV header)."""
    if fmt not in ("auto", "lines") or _magic(path)[:4] in ZIP_MAGICS:
        return False
    if fmt == "lines":
        return True
    with _file_errors(path), _open(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        return _sniff(text.readline()) == "lines"


@contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """The errors ``read_entries`` maps to ``ListFileError``, mapped the same way."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ListFileError(f"{path}: corrupt gzip data: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ListFileError(f"{path}: not UTF-8 text (byte {exc.start} of a chunk): is it a list file?") from None


def _open(path: Path) -> BinaryIO:
    return open_binary(path)


class _CountryCodes:
    """``number_of``'s fast-path tests for ``+`` lines of 8-15 digits, by their first three digits
    (cached): a known country code, and national digits that phonenumbers keeps as they are
    (``loader.keeps_national_digits``: no trunk prefix or carrier code it would strip). A line
    that fails either takes ``number_of``, which normalises it in full."""

    def __init__(self) -> None:
        self._codes: dict[bytes, bytes] = {}  # first three digits -> country code digits (b"": none)
        self._searches: dict[frozenset[bytes], re.Pattern[bytes] | None] = {}
        self._invalid: dict[frozenset[bytes], re.Pattern[bytes]] = {}
        self._tails: dict[frozenset[bytes], re.Pattern[bytes] | None] = {}
        self._heads: dict[bytes, bool] = {}  # a line but its last TAIL_DIGITS -> all such lines valid

    def code(self, first3: bytes) -> bytes:
        code = self._codes.get(first3)
        if code is None:
            code = self._codes[first3] = first3[: country_code_length(first3.decode("ascii"))]
        return code

    def __call__(self, first3: bytes) -> bool:
        return bool(self.code(first3))

    def keeps(self, line: bytes) -> bool:
        """``keeps_national_digits`` for one ``+`` line with a known country code."""
        code = self.code(line[1:4])
        return keeps_national_digits(int(code), line[1 + len(code) :].decode("ascii"))

    def valid(self, line: bytes) -> bool:
        """``validity.valid_digits`` for one ``+`` line with a known country code."""
        code = self.code(line[1:4])
        return valid_digits(int(code), line[1 + len(code) :].decode("ascii"))

    def invalid_lines(self, body: bytes, first3s: set[bytes], heads: set[bytes]) -> Iterator[int]:
        """The indexes, ascending, of the lines of ``body`` (as for ``prefixed_lines``; ``heads``: its
        lines' heads, all but their last ``TAIL_DIGITS``) whose digits phonenumbers does not find
        valid as they stand: none when every head is valid with any digits after it (sorted
        snapshots share heads: a few tests a chunk, cached), else one search of the whole chunk."""
        codes = frozenset(map(self.code, first3s))
        if self._every_head_valid(codes, heads):
            return
        if codes not in self._invalid:
            self._invalid[codes] = invalid_lines_search(codes)
        yield from _line_indexes(body, self._invalid[codes])

    def _every_head_valid(self, codes: frozenset[bytes], heads: set[bytes]) -> bool:
        if codes not in self._tails:
            self._tails[codes] = tail_free_search(codes)
        tails, known = self._tails[codes], self._heads
        if tails is None:
            return False
        for head in heads:
            valid = known.get(head)
            if valid is None:
                if len(known) >= MAX_HEADS:
                    known.clear()
                valid = known[head] = tails.match(head + _ANY_TAIL) is not None
            if not valid:
                return False
        return True

    def prefixed_lines(self, body: bytes, first3s: set[bytes]) -> Iterator[int]:
        """The indexes, ascending, of the lines of ``body`` (plain ``+`` lines, every country code
        known, first three digits ``first3s``) whose national part their country's
        ``national_prefix`` matches (even emptily): one search of the whole chunk."""
        codes = frozenset(map(self.code, first3s))
        if codes not in self._searches:
            self._searches[codes] = _prefix_search(codes)
        search = self._searches[codes]
        if search is not None:
            yield from _line_indexes(b"\n" + body, search)  # every line, the first too, starts after a newline


def _line_indexes(text: bytes, search: re.Pattern[bytes]) -> Iterator[int]:
    """For each match of ``search`` in ``text``, ascending: how many newlines come before it (the
    index of its line, when each match starts its line or sits on the newline before it)."""
    index, last = 0, 0
    for match in search.finditer(text):
        index += text.count(b"\n", last, match.start())
        last = match.start()
        yield index


def _prefix_search(codes: frozenset[bytes]) -> re.Pattern[bytes] | None:
    """A newline, ``+CC`` then CC's ``national_prefix`` pattern, for any of ``codes`` with one.
    Multiline, so a ``$`` in a pattern matches at the end of the line as at the end of the
    national number. A pattern with another anchor, a lookbehind or a back-reference is not
    trusted to mean the same here: every line of its country matches (and is checked alone)."""
    branches = []
    for code in sorted(codes):
        pattern = national_prefix(int(code))
        if pattern is None:
            continue
        text = pattern.pattern
        trusted = not _UNTRUSTED.search(text)
        branch = code + (b"(?:" + text.encode("ascii") + b")" if trusted else b"")
        if trusted and pattern.match("") is not None:
            # A pattern that matches nothing at all (Argentina's 0?(?:(11|...)?15)?) would flag every
            # line of its country: require it to consume a digit. Its groups are digits, so an empty
            # match has none and phonenumbers keeps those lines as they are.
            branch += rb"(?<!\+" + code + b")"
        branches.append(branch)
    # Zero-width after the newline, so that no match can run into the next line and hide it.
    return re.compile(rb"\n(?=\+(?:" + b"|".join(branches) + b"))", re.MULTILINE) if branches else None


def parse_lines_fast(
    path: Path, number_of: Callable[[str], int | str], *, progress: Callable[[int], None] | None = None,
    invalid: InvalidLines | None = None, give_up: InvalidShare | None = None, workers: int = 1,
) -> FastParsed:
    """Every line of a one-number-a-line snapshot: numbers in file order, bad lines reported.

    ``number_of`` is the slow path's normaliser (``loader.number_of`` under the dial plan).
    Same results as ``read_entries`` + ``parse_file``; raises ``ListFileError`` like them, and
    ``NotFast`` for a file with a run of ``MAX_RUN_BYTES`` without a newline. ``invalid`` collects
    the bad lines; ``give_up`` is checked after each chunk. ``progress`` is told the lines read so
    far, after each chunk. ``workers`` > 1: that many processes run the fast path over the chunks
    (``lists.fastpool``); this one reads, decompresses and joins them in order, so the result is
    the same. ``FastParsed.ascending`` tells whether the numbers came strictly ascending."""
    out = FastParsed(invalid=invalid if invalid is not None else InvalidLines())
    known = _CountryCodes()
    line = 0  # lines before the current chunk
    with _file_errors(path), _open(path) as raw, pieces(fast_piece, line_chunks(raw, path), workers) as made:
        for chunk, piece in made:
            before = len(out.numbers)
            if piece is not None:
                line = apply_piece(piece, line, out, number_of)
            else:
                line = _slow_chunk(chunk, line, out, known, number_of)
            out.ascending = out.ascending and _still_ascending(out.numbers, before, piece)
            if give_up is not None:
                give_up.check(out.read, len(out.invalid), path)
            if progress is not None:
                progress(out.read)
    if give_up is not None:
        give_up.check(out.read, len(out.invalid), path)
    if progress is not None:
        progress(out.read)
    return out


def line_chunks(raw: BinaryIO, path: Path) -> Iterator[bytes]:
    """The file in chunks of about ``CHUNK_BYTES``, each cut after a newline (the last may lack it);
    ``NotFast`` for a run of ``MAX_RUN_BYTES`` without a newline."""
    rest = b""
    while data := raw.read(CHUNK_BYTES):
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest += data
            if len(rest) > MAX_RUN_BYTES:
                raise NotFast(f"{path}: more than {MAX_RUN_BYTES} bytes without a newline")
            continue
        yield rest + data[:cut]
        rest = data[cut:]
    if rest:
        yield rest


def _still_ascending(numbers: array[int], before: int, piece: Piece | None) -> bool:
    """Whether ``numbers``, strictly ascending up to ``before``, still are with what a chunk added.
    A piece with no slow line knows its own order; else the chunk's numbers are walked here."""
    if len(numbers) == before:
        return True
    if before and numbers[before - 1] >= numbers[before]:
        return False
    if piece is not None and not piece.slow:
        return piece.ascending
    return ascending(numbers, before)


def ascending(numbers: array[int], start: int = 0) -> bool:
    """Every number of ``numbers[start:]`` below the next (a pairwise walk in C, no slice copied)."""
    return all(map(lt, islice(numbers, start, None), islice(numbers, start + 1, None)))


@dataclass(frozen=True, slots=True)
class Piece:
    """What the fast path made of a chunk of plain ``+`` lines (``fast_piece``; picklable, so that a
    worker process can make it): the numbers of its fast lines in file order, and the lines that
    take ``number_of`` as ``(fast numbers before it, index of the line in the chunk, the line)``."""

    numbers: array[int]
    lines: int
    slow: tuple[tuple[int, int, bytes], ...] = ()
    ascending: bool = True  # the fast numbers strictly ascending


_KNOWN = _CountryCodes()  # a process's own cache (a worker process fills its own)


def fast_piece(chunk: bytes, known: _CountryCodes = _KNOWN) -> Piece | None:
    """The fast path over one chunk of whole lines (the last may lack its newline), or None when a
    line of it is not a plain ``+`` line of a known country code (or a lone CR ends a line): the
    per-line loop of ``_slow_chunk`` reads such a chunk."""
    if b"\r" in chunk:
        if chunk.count(b"\r\n") != chunk.count(b"\r") or chunk.endswith(b"\r"):
            return None
        chunk = chunk.replace(b"\r\n", b"\n")
    body = chunk[:-1] if chunk.endswith(b"\n") else chunk
    lines = body.split(b"\n")
    count = len(lines)
    if not (
        body.startswith(b"+")
        and not body.translate(None, _PLAIN)
        and body.count(b"+") == count
        and body.count(b"\n+") == count - 1
        and min(map(len, lines)) >= 9
        and max(map(len, lines)) <= 16
        # Heads are at least 5 characters (lines at least 9): their first three digits are the lines'.
        and all(map(known, first3s := set(map(_FIRST3, heads := set(map(_HEAD, lines))))))
    ):
        return None
    # Lines that are not valid as they stand, or whose national part may start with a prefix
    # phonenumbers strips, take number_of (its reason, or the number phonenumbers makes of them).
    slow = set(known.invalid_lines(body, first3s, heads))
    # A prefix candidate that phonenumbers keeps as it is (an empty match) stays on the fast path.
    slow.update(i for i in known.prefixed_lines(body, first3s) if i not in slow and not known.keeps(lines[i]))
    numbers: array[int] = array("q")
    start = 0
    held = []
    for index in sorted(slow):
        numbers.extend(map(int, lines[start:index]))
        held.append((len(numbers), index, lines[index]))
        start = index + 1
    numbers.extend(map(int, lines[start:]))
    return Piece(numbers, count, tuple(held), ascending(numbers))


def apply_piece(piece: Piece, line: int, out: FastParsed, number_of: Callable[[str], int | str]) -> int:
    """Add a chunk's ``Piece`` (its first line is ``line + 1``) to ``out``; returns the chunk's last line."""
    start = 0
    for before, index, text in piece.slow:
        out.numbers.extend(piece.numbers[start:before])
        _slow_line(text.decode("ascii"), line + 1 + index, out, number_of)
        out.read -= 1  # counted below with the rest
        start = before
    out.numbers.extend(piece.numbers[start:] if start else piece.numbers)
    out.read += piece.lines
    return line + piece.lines


def _slow_chunk(
    chunk: bytes, line: int, out: FastParsed, known: _CountryCodes, number_of: Callable[[str], int | str]
) -> int:
    """A chunk ``fast_piece`` does not take (first line ``line + 1``), line by line; returns its last line."""
    if b"\r" in chunk:
        if chunk.count(b"\r\n") != chunk.count(b"\r") or chunk.endswith(b"\r"):
            return _slow_text(chunk.decode("utf-8"), line, out, number_of)  # a lone CR ends a line too
        chunk = chunk.replace(b"\r\n", b"\n")
    body = chunk[:-1] if chunk.endswith(b"\n") else chunk
    lines = body.split(b"\n")
    for index, text in enumerate(lines, start=line + 1):
        if (9 <= len(text) <= 16 and text.startswith(b"+") and text[1:].isdigit() and known(text[1:4])
                and known.keeps(text) and known.valid(text)):
            out.numbers.append(int(text))
            out.read += 1
        else:
            _slow_line(text.decode("utf-8"), index, out, number_of)
    return line + len(lines)


def _slow_text(text: str, line: int, out: FastParsed, number_of: Callable[[str], int | str]) -> int:
    last = line
    for last, item in enumerate(io.StringIO(text, newline=""), start=line + 1):
        _slow_line(item, last, out, number_of)
    return last


def _slow_line(raw: str, line: int, out: FastParsed, number_of: Callable[[str], int | str]) -> None:
    """``formats._line_entries`` and ``sync.parse_file`` for one line, unchanged."""
    text = raw.strip().lstrip("\ufeff")
    if not text or text.startswith("#"):
        return
    out.read += 1
    if len(text) > MAX_LINE_CHARS:
        out.invalid.append(LineError(line, text[:80], f"line longer than {MAX_LINE_CHARS} characters"))
        return
    number = number_of(text)
    if isinstance(number, str):
        out.invalid.append(LineError(line, text, number))
    else:
        out.numbers.append(number)
