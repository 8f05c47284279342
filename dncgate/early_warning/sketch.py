"""A small HyperLogLog over rotating sub-sketches: distinct values in a sliding window, in fixed bytes.

Each originator keeps ``SUBS`` sub-sketches of ``2**bits`` one-byte registers in one ``bytearray``;
sub-sketch ``i`` covers one ``span`` of time and is cleared when its turn comes round again, so the
merged registers (the maximum of each register over the sub-sketches) estimate the distinct values
seen in the last ``SUBS - 1`` to ``SUBS`` spans. Memory is ``SUBS * 2**bits`` bytes whatever the
traffic; the estimate's relative standard error is about ``1.04 / sqrt(2**bits)`` (13 % at 6 bits,
18 % at 5 bits), with linear counting for small counts (Flajolet et al. 2007, Heule et al. 2013),
which is exact enough to tell 3 callees from 30 or 300.

Values are 64-bit integers (callee digits) or strings hashed once with CRC-32 (caller IDs); the
hash is a fixed multiply-xorshift, so registers persisted by one process mean the same in the next.
"""

from __future__ import annotations

import math
import zlib

MASK64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd


def mix64(value: int) -> int:
    """A 64-bit hash of ``value`` (stable across processes, unlike ``hash()``)."""
    h = ((value + 0x632BE59BD9B4E019) * _MIX) & MASK64
    h ^= h >> 31
    h = (h * 0xBF58476D1CE4E5B9) & MASK64
    return h ^ (h >> 29)


def text_hash(value: str) -> int:
    return mix64(zlib.crc32(value.encode("utf-8", "replace")))


def add(registers: bytearray, base: int, bits: int, hashed: int) -> bool:
    """Count ``hashed`` (a ``mix64``) into the sub-sketch starting at ``registers[base]``; True if
    a register rose (the estimate may have changed)."""
    index = base + (hashed >> (64 - bits))
    rest = hashed & ((1 << (64 - bits)) - 1)
    rank = 65 - bits - rest.bit_length()
    if registers[index] < rank:
        registers[index] = rank
        return True
    return False


_POWERS = tuple(2.0 ** -rank for rank in range(65))


def estimate(registers: bytearray | bytes, bits: int, subs: int) -> float:
    """Distinct values over every sub-sketch (their registers merged by maximum)."""
    m = 1 << bits
    subs_registers = (registers[m * s:m * (s + 1)] for s in range(subs))
    merged = bytes(registers) if subs == 1 else bytes(map(max, *subs_registers))
    zeros = merged.count(0)
    if zeros == m:
        return 0.0
    alpha = {16: 0.673, 32: 0.697, 64: 0.709}.get(m, 0.7213 / (1 + 1.079 / m))
    raw = alpha * m * m / sum(map(_POWERS.__getitem__, merged))
    if raw <= 2.5 * m and zeros:  # linear counting: accurate while registers are still empty
        return m * math.log(m / zeros)
    return raw
