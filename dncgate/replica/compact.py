"""A list of numbers in a compact, memory-mapped file: per-block sorted arrays (issue 14 item 1).

Numbers (E.164 digits as integers, < 10**15 < 2**50) are split by their high bits into blocks; a
block holds the low bits of its numbers as a sorted array of 16-bit members (blocks 2**16 wide) or
32-bit members (2**32 wide), whichever makes the smaller file for the data at hand: a dense national
list costs about 2 bytes a number, a sparse one about 4, plus 16 bytes per block for the directory.
A lookup is two binary searches (the block directory, then the block), no allocation.

The file is written once (beside, then renamed into place) and mapped read-only, so every worker
process on a host that opens the same file shares one copy in the page cache. Layout, little-endian:

    magic b"DNCLIST1" | width (16|32) u64 | count u64 | blocks u64
    block keys   i64[blocks]       number >> width of each block, ascending
    offsets      i64[blocks + 1]   where each block's members start in the member array
    members      u16|u32[count]    number & (2**width - 1), ascending within a block

``CompactList.open`` checks the header and the sizes and raises :class:`CompactListError` (a
``DncgateError``) with a clear message for a file that is not one.
"""

from __future__ import annotations

import mmap
import os
import secrets
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from dncgate.errors import DncgateError

MAGIC: Final = b"DNCLIST1"
_HEADER: Final = struct.Struct("<8sQQQ")
_MAX_NUMBER: Final = 10**15
_WIDTHS: Final = (16, 32)
_DIRECTORY_BYTES_PER_BLOCK: Final = 16  # a key and an offset


class CompactListError(DncgateError):
    """A compact list file that cannot be read, or numbers that cannot be written."""


def choose_width(numbers: array[int]) -> int:
    """16 or 32: the member width giving the smaller file for these (sorted, distinct) numbers."""
    costs = {width: width // 8 * len(numbers) + _DIRECTORY_BYTES_PER_BLOCK * _blocks(numbers, width)
             for width in _WIDTHS}
    return min(costs, key=lambda width: (costs[width], width))


def _blocks(numbers: array[int], width: int) -> int:
    count, last = 0, -1
    for number in numbers:
        if number >> width != last:
            count, last = count + 1, number >> width
    return count


def sorted_distinct(numbers: Iterable[int]) -> array[int]:
    """The numbers, sorted and without repeats, as an ``array('q')``; raises on one out of range."""
    values = array("q", sorted(set(numbers)))
    if values and (values[0] < 1 or values[-1] >= _MAX_NUMBER):
        raise CompactListError(f"number {values[0] if values[0] < 1 else values[-1]} is not 1-15 digits")
    return values


def write(path: Path, numbers: Iterable[int], *, width: int | None = None) -> int:
    """Write ``numbers`` (any order, repeats allowed) as a compact list file at ``path``; returns its size."""
    values = sorted_distinct(numbers)
    return write_sorted(path, values, width=width or choose_width(values))


def write_sorted(path: Path, numbers: Iterable[int], *, width: int = 16) -> int:
    """Write ascending, distinct ``numbers`` (streamed: only the file's arrays are held, ``width`` / 8
    bytes a number) at ``path``: beside it first, then renamed in place, so a reader sees the old file
    or the new one, whole. Raises ``CompactListError`` for a number out of order or out of range."""
    if width not in _WIDTHS:
        raise CompactListError(f"member width {width}: expected 16 or 32")
    keys, offsets = array("q"), array("q")
    members = array("H" if width == 16 else "I")
    mask, last_key, previous = (1 << width) - 1, -1, 0
    for number in numbers:  # an error here (or in the iterator) leaves no file behind
        if not previous < number < _MAX_NUMBER:
            raise CompactListError(f"number {number} is not 1-15 digits" if not 0 < number < _MAX_NUMBER
                                   else f"number {number} after {previous}: not ascending and distinct")
        previous = number
        if number >> width != last_key:
            last_key = number >> width
            keys.append(last_key)
            offsets.append(len(members))
        members.append(number & mask)
    offsets.append(len(members))
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")  # writers never share one
    try:
        with temporary.open("wb") as out:
            out.write(_HEADER.pack(MAGIC, width, len(members), len(keys)))
            for part in (keys, offsets, members):
                if sys.byteorder != "little":
                    part.byteswap()
                out.write(part.tobytes())
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise CompactListError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    return path.stat().st_size


class CompactList:
    """A compact list file, mapped read-only. ``number in compact`` is the lookup."""

    def __init__(self, path: Path, mapped: mmap.mmap, width: int, count: int, blocks: int) -> None:
        self.path = path
        self._mapped = mapped
        self.width = width
        self.count = count
        self.blocks = blocks
        view = self._view = memoryview(mapped)
        start = _HEADER.size
        self._keys = view[start : start + 8 * blocks].cast("q")
        start += 8 * blocks
        self._offsets = view[start : start + 8 * (blocks + 1)].cast("q")
        start += 8 * (blocks + 1)
        self._members = view[start : start + width // 8 * count].cast("H" if width == 16 else "I")
        self._mask = (1 << width) - 1

    @classmethod
    def open(cls, path: Path) -> CompactList:
        """Map ``path``; raises ``CompactListError`` when it is missing, short, or not a compact list."""
        try:
            with path.open("rb") as source:
                size = os.fstat(source.fileno()).st_size
                if size < _HEADER.size:
                    raise CompactListError(f"{path}: {size} bytes, shorter than a compact list's header")
                mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise CompactListError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        magic, width, count, blocks = _HEADER.unpack_from(mapped, 0)
        expected = _HEADER.size + 8 * blocks + 8 * (blocks + 1) + width // 8 * count if width in _WIDTHS else -1
        if magic != MAGIC or expected != size or sys.byteorder != "little":
            mapped.close()
            raise CompactListError(f"{path}: not a compact list file (magic {magic!r}, width {width}, "
                                   f"{size} bytes where the header says {expected})")
        return cls(path, mapped, width, count, blocks)

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int) or not 0 <= number < _MAX_NUMBER:
            return False
        key = number >> self.width
        keys = self._keys
        block = bisect_left(keys, key)
        if block == self.blocks or keys[block] != key:
            return False
        low, high = self._offsets[block], self._offsets[block + 1]
        member = number & self._mask
        position = bisect_left(self._members, member, low, high)
        return position < high and self._members[position] == member

    def __len__(self) -> int:
        return self.count

    @property
    def size_bytes(self) -> int:
        return len(self._mapped)

    def close(self) -> None:
        for view in (self._keys, self._offsets, self._members, self._view):
            view.release()
        self._mapped.close()
