from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dncgate.store.redis.blocks import (
    PER_BLOCK_OVERHEAD,
    check_numbers,
    choose_k,
    estimate,
    iter_blocks,
    join,
    member_width,
    members_of,
    split,
)


def test_member_width_follows_intset_encodings() -> None:
    assert [member_width(k) for k in (2, 3, 4, 5, 6, 7, 9, 10)] == [2, 2, 2, 4, 4, 4, 4, 8]


def test_split_and_join() -> None:
    assert split(8613800138000, 6) == (8613800, 138000)
    assert join(8613800, 138000, 6) == 8613800138000
    assert split(8613800138000, 4) == (861380013, 8000)


@given(st.lists(st.integers(1, 10**15 - 1), unique=True), st.integers(3, 7))
def test_blocks_cover_every_number_once_in_order(numbers: list[int], k: int) -> None:
    numbers.sort()
    rebuilt = []
    previous_block = -1
    for block, start, end in iter_blocks(numbers, k):
        assert block > previous_block
        previous_block = block
        members = members_of(numbers, start, end, block, k)
        assert members == sorted(members)
        assert all(0 <= m < 10**k for m in members)
        rebuilt.extend(join(block, m, k) for m in members)
    assert rebuilt == numbers


def test_estimate_counts_blocks_and_the_largest() -> None:
    numbers = [8613800000000 + i for i in range(0, 30_000, 3)] + [12015550123]
    numbers.sort()
    est = estimate(numbers, 4, max_entries=10**6)
    assert est.blocks == 4
    assert est.largest == 3334
    assert est.bytes == 4 * PER_BLOCK_OVERHEAD + len(numbers) * 2
    assert est.fits
    assert not estimate(numbers, 4, max_entries=1000).fits


def test_dense_data_gets_big_blocks_sparse_data_small_ones() -> None:
    rng = random.Random(1)
    dense = sorted({86138_0000_000 + rng.randrange(2 * 10**6) for _ in range(1_000_000)})
    sparse = sorted({86_000_000_000 + rng.randrange(10**12) for _ in range(50_000)})
    dense_k = choose_k(dense, max_entries=10**6)
    sparse_k = choose_k(sparse, max_entries=10**6)
    assert dense_k.fits
    assert sparse_k.fits
    # Dense ranges: blocks of 10^4 with int16 members, ~2 bytes a number.
    assert dense_k.k == 4
    assert dense_k.bytes / len(dense) < 2.5
    # Scattered numbers: the per-key cost dominates, so the fewest keys win.
    assert sparse_k.k == 7


def test_choice_respects_the_intset_limit() -> None:
    numbers = list(range(86138_0000_000, 86138_0000_000 + 100_000))
    assert choose_k(numbers, max_entries=10**6).k in (4, 5)
    limited = choose_k(numbers, max_entries=512)
    assert limited.k == 3
    assert not limited.fits  # blocks of 1000 > 512: the caller warns
    assert choose_k(numbers, max_entries=2000).largest <= 2000


def test_estimate_gives_up_early() -> None:
    numbers = list(range(1, 10**6 * 1000, 1000))
    est = estimate(numbers, 3, 10**6, give_up_above=10_000)
    assert est.bytes > 10_000
    assert est.blocks < 1000


def test_check_numbers() -> None:
    check_numbers([1, 10**15 - 1])
    check_numbers([])
    with pytest.raises(ValueError, match="positive integer"):
        check_numbers([0, 5])
    with pytest.raises(ValueError, match="positive integer"):
        check_numbers([5, 10**15])
