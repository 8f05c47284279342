"""Compact list files (dncgate.replica.compact): membership is exactly the set written, at both member
widths, across block edges; two maps of one file agree; a file that is not one is refused clearly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.errors import DncgateError
from dncgate.replica.compact import (
    CompactList,
    CompactListError,
    choose_width,
    sorted_distinct,
    write,
    write_sorted,
)

_NUMBERS = st.lists(st.integers(1, 10**15 - 1) | st.integers(12_015_550_000, 12_015_560_000)
                    | st.sampled_from([65535, 65536, 65537, 2**32 - 1, 2**32, 2**32 + 1]), max_size=300)


@settings(max_examples=150, deadline=None)
@given(_NUMBERS, st.sampled_from([None, 16, 32]), st.lists(st.integers(-5, 10**15 + 5), max_size=50))
def test_membership_is_the_set_written(tmp_path_factory: pytest.TempPathFactory, numbers: list[int],
                                       width: int | None, probes: list[int]) -> None:
    path = tmp_path_factory.mktemp("compact") / "list.dnc"
    write(path, numbers, width=width)
    compact = CompactList.open(path)
    try:
        expected = set(numbers)
        assert len(compact) == len(expected)
        for number in [*expected, *probes, *(n + 1 for n in expected), *(n - 1 for n in expected)]:
            assert (number in compact) == (number in expected), number
    finally:
        compact.close()


def test_dense_list_takes_16_bit_members_and_about_two_bytes_a_number(tmp_path: Path) -> None:
    numbers = range(12_015_550_000, 12_015_550_000 + 300_000, 3)  # 100,000 numbers, 1 in 3 of a range
    assert choose_width(sorted_distinct(numbers)) == 16
    size = write(tmp_path / "dense.dnc", numbers)
    assert size <= 2.1 * len(numbers)
    sparse = [n * 10**6 + 1 for n in range(10_000_000, 10_010_000)]  # one number per million
    assert choose_width(sorted_distinct(sparse)) == 32
    assert write(tmp_path / "sparse.dnc", sparse) <= 4.1 * len(sparse) + 64 + 16 * 2400


def test_two_maps_of_one_file_and_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "national.dnc"
    write(path, [12015550123, 8613800138000])
    first, second = CompactList.open(path), CompactList.open(path)
    write(path, [447700900123])  # renamed into place: the open maps keep the old file
    third = CompactList.open(path)
    try:
        assert 12015550123 in first
        assert 12015550123 in second
        assert 12015550123 not in third
        assert 447700900123 in third
        assert "12015550123" not in first
    finally:
        for compact in (first, second, third):
            compact.close()


def test_bad_files_and_numbers_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(CompactListError, match="cannot be read"):
        CompactList.open(tmp_path / "missing.dnc")
    (tmp_path / "short.dnc").write_bytes(b"DNC")
    with pytest.raises(CompactListError, match="shorter than"):
        CompactList.open(tmp_path / "short.dnc")
    path = tmp_path / "cut.dnc"
    write(path, range(10**10, 10**10 + 100))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(CompactListError, match="not a compact list file"):
        CompactList.open(path)
    with pytest.raises(CompactListError, match="not 1-15 digits"):
        write(tmp_path / "bad.dnc", [10**15])
    assert issubclass(CompactListError, DncgateError)


def test_streamed_write_refuses_disorder_and_leaves_no_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "streamed.dnc"
    assert write_sorted(path, iter(range(10**10, 10**10 + 70_000, 3))) > 0
    compact = CompactList.open(path)
    try:
        assert 10**10 + 69_999 in compact
        assert 10**10 + 1 not in compact
    finally:
        compact.close()
    with pytest.raises(CompactListError, match="not ascending and distinct"):
        write_sorted(tmp_path / "disorder.dnc", [5, 5])

    def failing() -> Iterator[int]:
        yield 12015550123
        raise CompactListError("the reader gave up")

    with pytest.raises(CompactListError, match="gave up"):
        write_sorted(tmp_path / "failed.dnc", failing())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.dnc"]
