"""Prefix blocks: how a list of numbers is sharded into small integer sets. Pure functions, no I/O.

A number is split by a block size of ``10**k``: ``block = number // 10**k`` names the set,
``member = number % 10**k`` is what the set holds. Members below ``10**4`` fit in 16 bits and
members below ``10**9`` in 32, so a store that keeps small integer sets compactly (Redis intsets)
spends 2 or 4 bytes per number plus a fixed cost per block.

Which ``k`` is best depends on density: registrations cluster in operator ranges, so a dense
list wants big blocks with few keys, a sparse one small blocks with narrow members, but never
blocks larger than the store keeps compact. ``choose_k`` estimates the memory of every candidate
and picks the cheapest that fits.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dncgate.store.distinct import MAX_NUMBER

CANDIDATE_K: tuple[int, ...] = (3, 4, 5, 6, 7)
# Bytes a block costs beyond its members: the key's dict entry, key string, object header and
# intset header. Measured on Redis 7.0 (jemalloc) for keys like "dnc:{national}:v17:b86138001".
PER_BLOCK_OVERHEAD = 112


def block_size(k: int) -> int:
    """``10**k`` as an int (``**`` with a variable exponent is typed ``Any``)."""
    size: int = 10**k
    return size


def member_width(k: int) -> int:
    """Bytes per member of an intset holding members below ``10**k`` (int16, int32 or int64)."""
    top = block_size(k) - 1
    if top <= 2**15 - 1:
        return 2
    if top <= 2**31 - 1:
        return 4
    return 8


def split(number: int, k: int) -> tuple[int, int]:
    """``(block, member)`` of a number for a block size of ``10**k``."""
    return divmod(number, block_size(k))


def join(block: int, member: int, k: int) -> int:
    """The number that ``split`` took apart."""
    return block * block_size(k) + member


@dataclass(frozen=True, slots=True)
class BlockEstimate:
    k: int
    blocks: int
    largest: int
    bytes: int  # estimated memory of the whole list
    fits: bool  # every block stays within the compact-set limit


def iter_blocks(numbers: Sequence[int], k: int) -> Iterator[tuple[int, int, int]]:
    """``(block, start, end)`` for a sorted sequence of distinct numbers: ``numbers[start:end]``
    is the block. Costs one bisection per block, not a step per number."""
    size = block_size(k)
    start, total = 0, len(numbers)
    while start < total:
        block = numbers[start] // size
        end = bisect_left(numbers, (block + 1) * size, start)
        yield block, start, end
        start = end


def estimate(numbers: Sequence[int], k: int, max_entries: int, *, give_up_above: int | None = None) -> BlockEstimate:
    """Memory estimate for sorted, distinct ``numbers`` split by ``10**k``.

    Stops early (``bytes`` is then only a lower bound) once the estimate passes ``give_up_above``,
    so a hopeless candidate does not walk millions of tiny blocks.
    """
    width = member_width(k)
    members = len(numbers) * width
    blocks = largest = 0
    for _, start, end in iter_blocks(numbers, k):
        blocks += 1
        largest = max(largest, end - start)
        if give_up_above is not None and blocks * PER_BLOCK_OVERHEAD + members > give_up_above:
            break
    return BlockEstimate(k, blocks, largest, blocks * PER_BLOCK_OVERHEAD + members, largest <= max_entries)


def choose_k(
    numbers: Sequence[int], max_entries: int, candidates: Sequence[int] = CANDIDATE_K
) -> BlockEstimate:
    """The cheapest block size for sorted, distinct ``numbers`` whose largest block has at most
    ``max_entries`` members. When none fits, the candidate with the smallest largest block (and
    ``fits=False``): the caller should warn that blocks will not stay compact."""
    if not candidates:
        raise ValueError("choose_k needs at least one candidate k")
    best: BlockEstimate | None = None
    fallback: BlockEstimate | None = None
    # Big blocks first: they have the fewest blocks, so they give a bound early.
    for k in sorted(candidates, reverse=True):
        bound = best.bytes if best is not None else None
        est = estimate(numbers, k, max_entries, give_up_above=bound)
        if bound is not None and est.bytes > bound:
            continue
        if est.fits:
            if best is None or est.bytes < best.bytes:
                best = est
        elif fallback is None or est.largest < fallback.largest:
            fallback = est
    if best is not None:
        return best
    assert fallback is not None  # every candidate was estimated in full when none fits
    return fallback


def members_of(numbers: Sequence[int], start: int, end: int, block: int, k: int) -> list[int]:
    """The members of one block, ascending (the order an intset appends cheaply)."""
    base = block * block_size(k)
    return [n - base for n in numbers[start:end]]


def check_numbers(numbers: Sequence[int]) -> None:
    """Sorted distinct numbers must all be E.164 numbers as integers. Raises ``ValueError``."""
    if numbers and (numbers[0] < 1 or numbers[-1] > MAX_NUMBER):
        bad = numbers[0] if numbers[0] < 1 else numbers[-1]
        raise ValueError(f"number {bad!r}: expected E.164 digits as a positive integer of at most 15 digits")
