"""A Redis intset's members straight from its ``DUMP`` payload into an array: no Python int per member.

The store keeps each block of a list as an intset (``dncgate.store.redis.blocks``). ``DUMP`` of an
intset is its RDB serialisation: the type byte 11 (``RDB_TYPE_SET_INTSET``), the intset blob as an
RDB string, two bytes of RDB version and eight of CRC64. The blob is the intset as Redis holds it:
encoding (2, 4 or 8 bytes a member) u32, length u32, then the members ascending, little-endian.

Redis LZF-compresses a blob when that saves space (often for 32-bit members, rarely for 16-bit
ones), and a set that outgrew ``set-max-intset-entries`` is not an intset: ``members`` returns None
for those and anything else it does not recognise, and the caller reads that block with SMEMBERS
(``from_members``). It never guesses: a payload it accepts has every length consistent.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable

_TYPE_SET_INTSET = 11
_TRAILER = 10  # RDB version (2) and CRC64 (8)
_INTSET_HEADER = struct.Struct("<II")
_CODES = {2: "h", 4: "i", 8: "q"}


def _string_start(payload: bytes) -> tuple[int, int] | None:
    """``(offset, length)`` of the RDB string after the type byte, or None if it is not a plain one."""
    if len(payload) < 2:
        return None
    first = payload[1]
    kind = first >> 6
    if kind == 0:
        return 2, first & 0x3F
    if kind == 1 and len(payload) >= 3:
        return 3, (first & 0x3F) << 8 | payload[2]
    if first == 0x80 and len(payload) >= 6:
        return 6, int.from_bytes(payload[2:6], "big")
    if first == 0x81 and len(payload) >= 10:
        return 10, int.from_bytes(payload[2:10], "big")
    return None  # 0xC0-0xC3: an integer-encoded or LZF-compressed string


def members(payload: bytes | None, code: str) -> array[int] | None:
    """The intset in ``payload`` (a DUMP reply) as an array of typecode ``code`` ("H" or "I"), or None
    when the payload is not a plain intset whose members all fit ``code`` (read the set otherwise)."""
    if payload is None or len(payload) < 1 + _TRAILER or payload[0] != _TYPE_SET_INTSET:
        return None
    found = _string_start(payload)
    if found is None:
        return None
    start, length = found
    if start + length + _TRAILER != len(payload) or length < _INTSET_HEADER.size:
        return None
    encoding, count = _INTSET_HEADER.unpack_from(payload, start)
    if encoding not in _CODES or _INTSET_HEADER.size + encoding * count != length:
        return None
    raw = array(_CODES[encoding])
    raw.frombytes(payload[start + _INTSET_HEADER.size : start + length])
    if sys.byteorder != "little":
        raw.byteswap()
    if raw and raw[0] < 0:  # ascending: the first member is the smallest
        return None
    if raw.itemsize == array(code).itemsize:
        return array(code, raw.tobytes())  # the same bytes, read unsigned (all members are >= 0)
    try:
        return array(code, raw)
    except OverflowError:
        return None


def from_members(found: Iterable[bytes | int], code: str) -> array[int]:
    """SMEMBERS' reply (member strings) as an ascending array of typecode ``code``."""
    return array(code, sorted(map(int, found)))
