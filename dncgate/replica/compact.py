"""A list of numbers in a compact, memory-mapped file: per-block sorted arrays (issue 14 item 1).

Numbers (E.164 digits as integers, < 10**15 < 2**50) are split by a block span: a block holds the
members ``number % span`` of the numbers with one ``number // span``, as a sorted array of 16-bit
members (span <= 2**16) or 32-bit members (span <= 2**32). The replica uses the Redis store's own
blocks (span ``10**k``: the intsets are copied as they are, ``dncgate.replica.intsets``); ``write``
picks 2**16 or 2**32, whichever makes the smaller file. A dense national list costs about 2 bytes a
number, a sparse one about 4, plus 16 bytes per block for the directory and at most 16 more for its
index. A lookup costs the same whatever the list's size: the index's bucket of the block key gives
the few directory entries to search (one or two in a national list, whose keys are dense in a range),
then a binary search in the block (at most ``span`` members), no allocation.

The file is written once (beside, then renamed into place) and mapped read-only, so every worker
process on a host that opens the same file shares one copy in the page cache. The members come
first, so a writer streams them block by block and holds only the directory. Little-endian:

    magic b"DNCLIST2" | span u64 | width (16|32) u64 | count u64 | blocks u64
                      | first key u64 | bucket shift u64 | buckets u64
    members      u16|u32[count]    number % span, ascending within a block
    padding      to a multiple of 8 bytes
    block keys   i64[blocks]       number // span of each block, ascending
    offsets      i64[blocks + 1]   where each block's members start in the member array
    index        i64[buckets + 1]  the first block whose key is >= first key + (bucket << shift)

``CompactList.open`` checks the header and the sizes and raises :class:`CompactListError` (a
``DncgateError``) with a clear message for a file that is not one (an older format included).
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
from typing import BinaryIO, Final

from dncgate.errors import DncgateError

MAGIC: Final = b"DNCLIST2"
_HEADER: Final = struct.Struct("<8sQQQQQQQ")
_MAX_NUMBER: Final = 10**15
_WIDTHS: Final = (16, 32)
_DIRECTORY_BYTES_PER_BLOCK: Final = 16  # a key and an offset


class CompactListError(DncgateError):
    """A compact list file that cannot be read, or numbers that cannot be written."""


def member_code(width: int) -> str:
    """The array typecode of ``width``-bit members."""
    return "H" if width == 16 else "I"


def _padded(size: int) -> int:
    return -size % 8


def count_blocks(numbers: array[int], span: int, give_up_above: int | None = None) -> int:
    """Blocks of ``span`` that sorted ``numbers`` fill: one bisection per block, not a step per number.
    Stops counting past ``give_up_above``."""
    count, start, total = 0, 0, len(numbers)
    while start < total and (give_up_above is None or count <= give_up_above):
        start = bisect_left(numbers, (numbers[start] // span + 1) * span, start)
        count += 1
    return count


def choose_width(numbers: array[int]) -> int:
    """16 or 32: the member width giving the smaller file for these (sorted, distinct) numbers."""
    wide = 4 * len(numbers) + _DIRECTORY_BYTES_PER_BLOCK * count_blocks(numbers, 2**32)
    # 16-bit members save 2 bytes a number; past this many blocks their directory costs more.
    bound = (wide - 2 * len(numbers)) // _DIRECTORY_BYTES_PER_BLOCK
    return 16 if count_blocks(numbers, 2**16, give_up_above=bound) <= bound else 32


def sorted_distinct(numbers: Iterable[int]) -> array[int]:
    """The numbers, sorted and without repeats, as an ``array('q')``; raises on one out of range."""
    try:
        values = array("q", sorted(set(numbers)))
    except OverflowError:
        raise CompactListError("a number is not 1-15 digits") from None
    if values and (values[0] < 1 or values[-1] >= _MAX_NUMBER):
        raise CompactListError(f"number {values[0] if values[0] < 1 else values[-1]} is not 1-15 digits")
    return values


def low_bits(numbers: array[int], width: int) -> array[int]:
    """``number & (2**width - 1)`` of each of ``numbers`` (an ``array('q')`` of non-negative numbers),
    in C: the little-endian low 16 or 32 bits of each 64-bit item."""
    raw = numbers.tobytes() if sys.byteorder == "little" else _swapped(numbers).tobytes()
    parts = array(member_code(width), raw)
    if sys.byteorder != "little":
        parts.byteswap()
    return parts[:: 64 // width]


def _swapped(numbers: array[int]) -> array[int]:
    copy = array("q", numbers)
    copy.byteswap()
    return copy


def write(path: Path, numbers: Iterable[int], *, width: int | None = None) -> int:
    """Write ``numbers`` (any order, repeats allowed) as a compact list file at ``path``; returns its size."""
    values = sorted_distinct(numbers)
    width = width or choose_width(values)
    if width not in _WIDTHS:
        raise CompactListError(f"member width {width}: expected 16 or 32")
    span = 1 << width
    with CompactWriter(path, span=span, width=width) as writer:
        start, total = 0, len(values)
        while start < total:
            key = values[start] >> width
            end = bisect_left(values, (key + 1) << width, start)
            writer.add(key, low_bits(values[start:end], width))
            start = end
        return writer.finish()


def write_sorted(path: Path, numbers: Iterable[int], *, width: int = 16) -> int:
    """Write ascending, distinct ``numbers`` (streamed, in chunks) at ``path``. Raises ``CompactListError``
    for a number out of order or out of range; an error leaves no file behind."""
    if width not in _WIDTHS:
        raise CompactListError(f"member width {width}: expected 16 or 32")
    with CompactWriter(path, span=1 << width, width=width) as writer:
        previous, key, members = 0, -1, array(member_code(width))
        mask = (1 << width) - 1
        for number in numbers:
            if not previous < number < _MAX_NUMBER:
                raise CompactListError(f"number {number} is not 1-15 digits" if not 0 < number < _MAX_NUMBER
                                       else f"number {number} after {previous}: not ascending and distinct")
            previous = number
            if number >> width != key:
                if members:
                    writer.add(key, members)
                key, members = number >> width, array(member_code(width))
            members.append(number & mask)
        if members:
            writer.add(key, members)
        return writer.finish()


class CompactWriter:
    """Writes a compact list file block by block: ``add(key, members)`` in ascending key order, then
    ``finish()``. The members go to a file beside ``path`` as they come (only the directory is held);
    ``finish`` renames it into place, so a reader sees the old file or the new one, whole. Closed
    without ``finish`` (an error), it leaves no file behind. Use it as a context manager."""

    def __init__(self, path: Path, *, span: int, width: int) -> None:
        if width not in _WIDTHS or not 1 < span <= 1 << width:
            raise CompactListError(f"member width {width} with block span {span}: expected 16 or 32 bits, "
                                   "span at most 2**width")
        self.path, self.span, self.width = path, span, width
        self.count = 0
        self._keys, self._offsets = array("q"), array("q")
        self._temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")  # never shared
        self._out: BinaryIO | None = None
        try:
            self._out = self._temporary.open("wb")
            self._out.write(_HEADER.pack(MAGIC, span, width, 0, 0, 0, 0, 0))  # rewritten by finish
        except OSError as exc:
            self.close()
            raise self._error(exc) from exc

    def __enter__(self) -> CompactWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, key: int, members: array[int]) -> None:
        """One block: ``members`` (typecode ``H`` or ``I`` as the width; ascending, each < span) of the
        numbers ``key * span + member``. Blocks come in ascending ``key`` order; an empty one is skipped."""
        if not members:
            return
        if members.typecode != member_code(self.width):
            raise CompactListError(f"block {key}: {members.typecode!r} members in a {self.width}-bit file")
        if (self._keys and key <= self._keys[-1]) or not 0 <= key < _MAX_NUMBER // self.span + 1:
            raise CompactListError(f"block {key} after {self._keys[-1] if self._keys else None}: "
                                   "not ascending, or out of range")
        if members[-1] >= self.span or members[0] > members[-1] or key * self.span + members[-1] >= _MAX_NUMBER:
            raise CompactListError(f"block {key}: members {members[0]}..{members[-1]} outside 0..{self.span - 1}")
        if self._out is None:
            raise CompactListError(f"{self.path}: the writer is closed")
        self._keys.append(key)
        self._offsets.append(self.count)
        self.count += len(members)
        try:
            self._out.write(_little(members))
        except OSError as exc:
            self.close()
            raise self._error(exc) from exc

    def finish(self) -> int:
        """The directory and header written, synced, renamed into place; returns the file's size."""
        out = self._out
        if out is None:
            raise CompactListError(f"{self.path}: the writer is closed")
        try:
            self._offsets.append(self.count)
            out.write(bytes(_padded(self.count * self.width // 8)))
            out.write(_little(self._keys))
            out.write(_little(self._offsets))
            first, shift, index = bucket_index(self._keys)
            out.write(_little(index))
            out.seek(0)
            out.write(_HEADER.pack(MAGIC, self.span, self.width, self.count, len(self._keys), first, shift,
                                   len(index) - 1))
            out.flush()
            os.fsync(out.fileno())
            out.close()
            self._out = None
            self._temporary.replace(self.path)
            return self.path.stat().st_size
        except OSError as exc:
            self.close()
            raise self._error(exc) from exc

    def close(self) -> None:
        """Give up (after ``finish``: nothing to do): the file beside ``path`` is removed."""
        if self._out is not None:
            self._out.close()
            self._out = None
            self._temporary.unlink(missing_ok=True)

    def _error(self, exc: OSError) -> CompactListError:
        return CompactListError(f"{self.path}: cannot be written ({exc.strerror or exc})")


def bucket_index(keys: array[int]) -> tuple[int, int, array[int]]:
    """``(first key, shift, index)`` for ascending ``keys``: the smallest shift whose buckets number at
    most twice the keys (plus 16), and for each bucket (and one past the last) the position of the first
    key >= ``first + (bucket << shift)``. One bisection per bucket."""
    if not keys:
        return 0, 0, array("q", [0])
    first, spread = keys[0], keys[-1] - keys[0]
    shift = 0
    while (spread >> shift) + 1 > 2 * len(keys) + 16:
        shift += 1
    index, position = array("q"), 0
    for bucket in range((spread >> shift) + 2):
        position = bisect_left(keys, first + (bucket << shift), position)
        index.append(position)
    return first, shift, index


def _little(values: array[int]) -> memoryview | bytes:
    """The array's bytes, little-endian (no copy on a little-endian host)."""
    if sys.byteorder == "little":
        return memoryview(values)
    copy = array(values.typecode, values)
    copy.byteswap()
    return copy.tobytes()


class CompactList:
    """A compact list file, mapped read-only. ``number in compact`` is the lookup."""

    def __init__(self, path: Path, mapped: mmap.mmap, header: tuple[int, ...]) -> None:
        span, width, count, blocks, self._first, self._shift, buckets = header
        self.path = path
        self._mapped = mapped
        self.span = span
        self.width = width
        self.count = count
        self.blocks = blocks
        view = self._view = memoryview(mapped)
        start = _HEADER.size
        members = view[start : start + width // 8 * count]
        self._members = members.cast("H") if width == 16 else members.cast("I")
        start += width // 8 * count + _padded(width // 8 * count)
        self._keys = view[start : start + 8 * blocks].cast("q")
        start += 8 * blocks
        self._offsets = view[start : start + 8 * (blocks + 1)].cast("q")
        start += 8 * (blocks + 1)
        self._index = view[start : start + 8 * (buckets + 1)].cast("q")
        self._buckets = buckets

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
        magic, *header = _HEADER.unpack_from(mapped, 0)
        span, width, count, blocks, _, shift, buckets = header
        members = width // 8 * count
        expected = _HEADER.size + members + _padded(members) + 16 * blocks + 8 + 8 * (buckets + 1) \
            if width in _WIDTHS and 1 < span <= 1 << width and shift < 64 else -1
        if magic != MAGIC or expected != size or sys.byteorder != "little":
            mapped.close()
            raise CompactListError(f"{path}: not a compact list file (magic {magic!r}, width {width}, "
                                   f"{size} bytes where the header says {expected})")
        return cls(path, mapped, tuple(header))

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int) or not 0 <= number < _MAX_NUMBER:
            return False
        key, member = divmod(number, self.span)
        bucket = (key - self._first) >> self._shift
        if not 0 <= bucket < self._buckets:
            return False
        keys, high = self._keys, self._index[bucket + 1]
        block = bisect_left(keys, key, self._index[bucket], high)
        if block == high or keys[block] != key:
            return False
        low, high = self._offsets[block], self._offsets[block + 1]
        position = bisect_left(self._members, member, low, high)
        return position < high and self._members[position] == member

    def __len__(self) -> int:
        return self.count

    @property
    def size_bytes(self) -> int:
        return len(self._mapped)

    def close(self) -> None:
        for view in (self._keys, self._offsets, self._index, self._members, self._view):
            view.release()
        self._mapped.close()
