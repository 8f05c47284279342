"""sorted_distinct's hand-over path: a strictly ascending array is taken as is, anything else is
sorted and de-duplicated as before (same numbers either way)."""

from __future__ import annotations

import random
from array import array

import pytest

from dncgate.store.distinct import sorted_distinct


@pytest.mark.parametrize("chunk", [1, 2, 7, 1 << 20])
def test_strictly_ascending_array_handed_over_is_the_result(chunk: int) -> None:
    numbers = array("q", range(8613000000000, 8613000000000 + 5000 * 7, 7))
    result = sorted_distinct(numbers, chunk=chunk, hand_over=True)
    assert result.numbers is numbers
    assert list(result) == sorted(set(numbers))
    assert result.given == len(numbers)


@pytest.mark.parametrize("chunk", [1, 3, 64, 1 << 20])
@pytest.mark.parametrize("shape", ["duplicate_at_chunk_edge", "one_out_of_order", "shuffled"])
def test_handed_over_array_not_strictly_ascending_is_sorted(chunk: int, shape: str) -> None:
    rng = random.Random(chunk)
    values = list(range(447000000000, 447000000000 + 300))
    if shape == "duplicate_at_chunk_edge":
        values.insert(min(chunk, len(values) - 1), values[min(chunk, len(values) - 1) - 1])
    elif shape == "one_out_of_order":
        values[100], values[101] = values[101], values[100]
    else:
        rng.shuffle(values)
    numbers = array("q", values)
    result = sorted_distinct(numbers, chunk=chunk, hand_over=True)
    assert list(result) == sorted(set(values))
    assert result.given == len(values)
    assert list(numbers) == values  # the caller's array is left as it was


def test_without_hand_over_a_sorted_array_is_copied() -> None:
    numbers = array("q", [447700900001, 447700900002])
    assert sorted_distinct(numbers).numbers is not numbers


def test_handed_over_array_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 15 digits"):
        sorted_distinct(array("q", [0, 447700900001]), hand_over=True)
    with pytest.raises(ValueError, match="at most 15 digits"):
        sorted_distinct(array("q", [447700900001, 10**15]), hand_over=True)


def test_empty_array_handed_over() -> None:
    assert len(sorted_distinct(array("q"), hand_over=True)) == 0
