"""Sorted, distinct numbers of a big snapshot without a Python set or list of every number.

``sorted(set(numbers))`` of 100M numbers holds ~100M int objects (32 B each) in a set and a list:
~9 GiB. Here the numbers stay in ``array('q')`` (8 B each): chunks of ``CHUNK`` numbers are sorted
and de-duplicated one at a time (C speed, ~70 MB of transient objects), then joined. Input that
arrives in order, or nearly (registries ship sorted files), is simply concatenated; input in any
other order is merged by a sample sort: splitters drawn from the data cut every sorted run with a
bisection, and each value range is gathered and sorted by itself. All per-number work happens in
C (``sorted``, ``set``, array slicing); Python only touches chunks and runs.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import islice
from operator import lt

from dncgate.sequences import Held

CHUNK = 1 << 20
_SAMPLE = 1 << 16
# The largest E.164 number has 15 digits.
MAX_NUMBER = 10**15 - 1


class SortedDistinct(Held[int, "array[int]"], Sequence[int]):
    """Ascending, distinct numbers in an ``array('q')``, and how many numbers they came from
    (``given - len(self)`` duplicates). Stores take it as already sorted and distinct."""

    __slots__ = ("given", "numbers")

    def __init__(self, numbers: array[int], given: int) -> None:
        self.numbers, self.given = numbers, given

    def __len__(self) -> int:
        return len(self.numbers)

    def _held(self) -> array[int]:
        return self.numbers


def _as_array(numbers: Iterable[int]) -> array[int]:
    if isinstance(numbers, array) and numbers.typecode == "q":
        return numbers
    try:
        return array("q", numbers)
    except OverflowError:
        raise ValueError("a number is too large: expected E.164 digits as a positive integer of at most 15 digits"
                         ) from None


def sorted_distinct(numbers: Iterable[int], *, chunk: int = CHUNK, hand_over: bool = False) -> SortedDistinct:
    """The numbers sorted ascending without duplicates; raises ``ValueError`` for a non-E.164 one.

    ``hand_over``: the caller gives up an ``array('q')`` it will not change again; when it is
    already strictly ascending (registries ship sorted files) it is returned as is instead of
    copied, so a 253M-number snapshot costs one array (2 GiB), not three."""
    if isinstance(numbers, SortedDistinct):
        return numbers
    data = _as_array(numbers)
    given = len(data)
    if hand_over and data is numbers and _strictly_ascending(data):
        _check_range(data)
        return SortedDistinct(data, given)
    runs = [_sorted_unique(data[i : i + chunk]) for i in range(0, given, chunk)]
    if all(runs[j - 1][-1] <= runs[j][0] for j in range(1, len(runs))):
        out = array("q")
        pending = deque(runs)
        del runs
        while pending:  # each run is freed once copied
            run = pending.popleft()
            out.extend(run[1:] if out and run[0] == out[-1] else run)
    else:
        out = _merge(data, runs, chunk)
    _check_range(out)
    return SortedDistinct(out, given)


def _check_range(ordered: array[int]) -> None:
    if ordered and (ordered[0] < 1 or ordered[-1] > MAX_NUMBER):
        bad = ordered[0] if ordered[0] < 1 else ordered[-1]
        raise ValueError(f"number {bad!r}: expected E.164 digits as a positive integer of at most 15 digits")


def _strictly_ascending(data: array[int]) -> bool:
    """Every number below the next (the same pairwise walk as ``_sorted_unique``, with no slice copied)."""
    return all(map(lt, data, islice(data, 1, None)))


def _merge(data: array[int], runs: list[array[int]], chunk: int) -> array[int]:
    """Sample sort of sorted, distinct runs: value ranges of about ``chunk`` numbers each."""
    step = max(1, len(data) // _SAMPLE)
    sample = sorted(set(data[::step]))
    every = max(1, len(sample) * chunk // max(1, len(data)))
    splitters: list[int | None] = [*sample[every::every], None]
    starts = [0] * len(runs)
    out = array("q")
    for high in splitters:
        bucket = array("q")
        for r, run in enumerate(runs):
            end = len(run) if high is None else bisect_left(run, high, starts[r])
            bucket.extend(run[starts[r] : end])
            starts[r] = end
        out.extend(_sorted_unique(bucket))
    return out


def _sorted_unique(numbers: array[int]) -> array[int]:
    """One chunk sorted, duplicates dropped (timsort is linear on input already in order)."""
    ordered = sorted(numbers)
    if all(map(lt, ordered, islice(ordered, 1, None))):
        return array("q", ordered)
    return array("q", dict.fromkeys(ordered))

