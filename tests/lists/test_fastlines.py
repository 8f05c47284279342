"""The snapshot fast path (lists.fastlines) against the entry-by-entry path: same numbers, same
bad lines with the same line numbers and problems, at every chunk size; and the chunked sort."""

from __future__ import annotations

import gzip
import random
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.lists import fastlines
from dncgate.lists.formats import ListFileError
from dncgate.lists.sync import Parsed, parse_entries, parse_file
from dncgate.numbers import DialPlan
from dncgate.store.distinct import sorted_distinct

PLAN = DialPlan(region="US")

# One of each kind of line a national file may hold (without its line ending).
SAMPLE = [
    "\ufeff+8613800138000",  # a BOM on the first line
    "+8613800138001",
    "+12015550123",
    "",
    "# a comment",
    "   ",
    "(201) 555-0124",  # national form, normalised under the dial plan
    "2015550125",
    "+1 201 555 0126",
    "  +12015550127  ",  # padded
    "junk",
    "+9991234567",  # unknown country code
    "+1234567",  # 7 digits
    "+1234567890123456",  # 16 digits
    "+12_015_550_128",  # int() would take it; the list must not
    "+1201555012x",
    "++12015550129",
    "+" + "1" * 5000,  # longer than MAX_LINE_CHARS
    "+٨٦١٣٨٠٠١٣٨٠٠٢",  # Arabic-Indic digits: the slow path's isdigit()/int() take them
    "+44 20 7946 0000",
    "+442079460001",
    "\t#indented comment",
    "+0012015550130",
    "+8613800138001",  # a duplicate
    "+12015550131",
]


def _write(path: Path, text: str, *, gz: bool) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _same(path: Path, fmt: str = "lines") -> Parsed:
    fast = parse_file(path, fmt, PLAN, delta=False)
    slow = parse_entries(path, fmt, PLAN, delta=False)
    assert list(fast.adds) == list(slow.adds)
    assert fast.invalid == slow.invalid
    assert fast.read == slow.read
    return fast


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 4 << 20])
def test_fast_path_matches_the_entry_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool, ending: str, chunk: int
) -> None:
    monkeypatch.setattr(fastlines, "CHUNK_BYTES", chunk)
    path = _write(tmp_path / "full.txt", ending.join(SAMPLE), gz=gz)  # the last line has no ending
    assert fastlines.applies(path, "auto")
    assert fastlines.applies(path, "lines")
    parsed = _same(path)
    assert {8613800138001, 12015550124, 442079460001} <= set(parsed.adds)
    problems = {e.line: e.problem for e in parsed.invalid}
    assert problems[12] == "unknown country code"
    assert problems[18].startswith("line longer than")
    assert {11, 13, 14, 15, 16, 17} <= set(problems)


def test_all_plain_lines_take_the_whole_chunk_path(tmp_path: Path) -> None:
    numbers = [8613800000000 + 7 * i for i in range(50_000)]
    path = _write(tmp_path / "full.txt.gz", "".join(f"+{n}\n" for n in numbers), gz=True)
    parsed = _same(path)
    assert list(parsed.adds) == numbers
    assert parsed.read == len(numbers)
    assert not parsed.invalid


def test_mixed_line_endings_and_a_lone_cr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastlines, "CHUNK_BYTES", 40)
    text = "+12015550123\r\n+12015550124\n+12015550125\rjunk\r\n\r\n+12015550126\r"
    _same(_write(tmp_path / "full.txt", text, gz=False))


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.sampled_from(SAMPLE[1:]), max_size=40),
    endings=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=40, max_size=40),
    chunk=st.integers(1, 300),
    final=st.booleans(),
)
def test_fast_path_matches_on_any_mix(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], endings: list[str], chunk: int, final: bool
) -> None:
    path = tmp_path_factory.mktemp("fl") / "full.txt"
    text = "".join(line + ending for line, ending in zip(lines, endings, strict=False))
    _write(path, text if final else text.rstrip("\r\n"), gz=False)
    old, fastlines.CHUNK_BYTES = fastlines.CHUNK_BYTES, chunk
    try:
        _same(path)
    finally:
        fastlines.CHUNK_BYTES = old


def test_csv_zip_and_other_formats_keep_the_entry_path(tmp_path: Path) -> None:
    csv = _write(tmp_path / "full.csv", "number,action\n+12015550123,add\n", gz=False)
    assert not fastlines.applies(csv, "auto")
    assert not fastlines.applies(csv, "csv")
    assert not fastlines.applies(csv, "ftc")
    assert list(parse_file(csv, "auto", PLAN, delta=False).adds) == [12015550123]


def test_corrupt_gzip_and_non_utf8_raise_like_the_entry_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(gzip.compress(b"+12015550123\n" * 1000)[:-30])
    with pytest.raises(ListFileError, match="corrupt gzip"):
        parse_file(broken, "lines", PLAN, delta=False)
    binary = _write(tmp_path / "bin.txt", "", gz=False)
    binary.write_bytes(b"+12015550123\n\xff\xfe\x00junk\n")
    with pytest.raises(ListFileError, match="not UTF-8"):
        parse_file(binary, "lines", PLAN, delta=False)


@pytest.mark.parametrize("ordered", [True, False])
def test_sorted_distinct_matches_sorted_set(ordered: bool) -> None:
    rng = random.Random(5)
    for _ in range(200):
        top = rng.choice((30, 10**6, 10**13))
        numbers = [rng.randrange(1, top) for _ in range(rng.randrange(0, 2000))]
        if ordered:
            numbers.sort()
        result = sorted_distinct(array("q", numbers), chunk=rng.randrange(1, 300))
        assert list(result) == sorted(set(numbers))
        assert result.given == len(numbers)


def test_sorted_distinct_refuses_non_e164() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        sorted_distinct([5, 0])
    with pytest.raises(ValueError, match="positive integer"):
        sorted_distinct([10**15])
    with pytest.raises(ValueError, match="positive integer"):
        sorted_distinct([2**64])
