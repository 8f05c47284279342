"""Fast path for deltas in the plain CSV form registries ship: ``number,action`` then ``+E.164,add``
or ``+E.164,remove`` lines (plain or gzip).

``parse_entries`` costs ~5 us a delta line (the csv module, an ``Entry``, ``number_of``): a
1M-change delta took 5-6 s to parse. Here a file whose header is exactly ``number,action`` and
whose every line is exactly ``+``, 8-15 digits, ``,add`` or ``,remove`` (``\\n`` or ``\\r\\n``) is
first checked whole with one C-level match a chunk; only then is it read again, each chunk's
numbers taken by the snapshot fast path (``fastlines.fast_piece``: the same validity checks, the
same numbers ``number_of`` gives, lines it does not take go through ``number_of``), and each
number's last action kept (the last line wins, as in ``parse_entries``). Any other file, or a
line of any other shape (quotes, spaces, capitals, blank lines, more columns), is left to
``parse_entries`` whole, before anything was reported: the two give the same result.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterator
from itertools import repeat
from pathlib import Path
from typing import BinaryIO

from dncgate.lists.fastlines import NotFast, _file_errors, _open, fast_piece, line_chunks
from dncgate.lists.formats import ZIP_MAGICS, LineError, _magic
from dncgate.lists.invalid import InvalidLines, InvalidShare

HEADER = b"number,action"
_LINES = re.compile(rb"(?:\+[0-9]{8,15},(?:add|remove)\n)*")
_ADD = b"d"  # "add" ends with it, "remove" does not


def applies(path: Path, fmt: str) -> bool:
    """Whether ``path`` (``fmt`` csv or auto) is a delta in the plain form, every line of it."""
    if fmt not in ("auto", "csv") or _magic(path)[:4] in ZIP_MAGICS:
        return False
    try:
        with _file_errors(path), _open(path) as raw:
            for index, chunk in enumerate(_chunks(raw, path)):
                if index == 0:
                    head, _, chunk = chunk.partition(b"\n")
                    if head != HEADER:
                        return False
                if _LINES.fullmatch(chunk) is None:
                    return False
    except NotFast:  # a line too long to be the plain form
        return False
    return True


def _chunks(raw: BinaryIO, path: Path) -> Iterator[bytes]:
    """The snapshot path's chunks (``fastlines.line_chunks``), CRLF made LF, each ending with a newline."""
    for chunk in line_chunks(raw, path):
        chunk = chunk.replace(b"\r\n", b"\n")
        yield chunk if chunk.endswith(b"\n") else chunk + b"\n"


def parse_delta_fast(
    path: Path, number_of: Callable[[str], int | str], *, invalid: InvalidLines,
    progress: Callable[[int], None] | None = None, give_up: InvalidShare | None = None,
) -> tuple[array[int], array[int], int, int]:
    """``(adds, removes, lines read, superseded)`` of a delta ``applies`` took; bad lines go to ``invalid``."""
    final: dict[int, bool] = {}
    read = superseded = 0
    with _file_errors(path), _open(path) as raw:
        for index, chunk in enumerate(_chunks(raw, path)):
            body = chunk.partition(b"\n")[2] if index == 0 else chunk
            if not body:
                continue
            rows = body[:-1].split(b"\n")
            numbers = _numbers(body.replace(b",add\n", b"\n").replace(b",remove\n", b"\n"), rows, 1 + read,
                               number_of, invalid)
            adds = map(bytes.endswith, rows, repeat(_ADD))
            kept = len(numbers) - numbers.count(0)
            pairs = zip(numbers, adds, strict=True) if kept == len(numbers) else (
                (n, a) for n, a in zip(numbers, adds, strict=True) if n)
            before = len(final)
            final.update(pairs)
            superseded += kept - (len(final) - before)
            read += len(rows)
            if give_up is not None:
                give_up.check(read, len(invalid), path)
            if progress is not None:
                progress(read)
    adds_out = array("q", sorted(n for n, add in final.items() if add))
    removes_out = array("q", sorted(n for n, add in final.items() if not add))
    return adds_out, removes_out, read, superseded


def _numbers(
    plain: bytes, rows: list[bytes], line: int, number_of: Callable[[str], int | str], invalid: InvalidLines,
) -> list[int]:
    """Each row's number (0: a bad line, reported) from ``plain`` (the rows as ``+`` lines); the
    first row is line ``line + 1`` of the file."""
    piece = fast_piece(plain)
    if piece is None:  # an unknown country code, say: each line as parse_entries takes it
        return [_one(row.partition(b",")[0], line + 1 + i, number_of, invalid) for i, row in enumerate(rows)]
    numbers: list[int] = piece.numbers.tolist()
    slow = [(before, _one(text, line + 1 + i, number_of, invalid)) for before, i, text in piece.slow]
    for before, number in reversed(slow):  # the last first: earlier places stay where they are
        numbers.insert(before, number)
    return numbers


def _one(text: bytes, line: int, number_of: Callable[[str], int | str], invalid: InvalidLines) -> int:
    number = number_of(text.decode("ascii"))
    if isinstance(number, str):
        invalid.append(LineError(line, text.decode("ascii"), number))
        return 0
    return number
