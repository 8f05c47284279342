"""The plain-CSV delta fast path (``lists.fastdelta``) gives what ``parse_entries`` gives: the same
adds and removes (the last line of a number wins), lines read, superseded lines and bad lines
(line numbers and reasons), and it leaves every other shape of file to ``parse_entries``."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.lists import fastdelta, fastlines
from dncgate.lists.sync import Parsed, parse_entries, parse_file
from dncgate.numbers import DialPlan
from tests.lists.test_fast_validity import EXAMPLES

PLAN = DialPlan(region="US")


def _same(fast: Parsed, slow: Parsed) -> None:
    assert list(fast.adds) == list(slow.adds)
    assert list(fast.removes) == list(slow.removes)
    assert (fast.read, fast.superseded) == (slow.read, slow.superseded)
    assert [(e.line, e.text, e.problem) for e in fast.invalid] == [(e.line, e.text, e.problem) for e in slow.invalid]


def _both(path: Path) -> tuple[Parsed, Parsed]:
    return parse_file(path, "auto", PLAN, delta=True), parse_entries(path, "auto", PLAN, delta=True)


_NUMBER = st.one_of(
    st.sampled_from(EXAMPLES),
    st.sampled_from(["+12015550123", "+12015550124", "+4402079460000", "+442079460000", "+8613800138000"]),
    st.text("0123456789", min_size=8, max_size=15).map(lambda d: "+" + d),
)
_ROW = st.tuples(_NUMBER, st.sampled_from(["add", "remove"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(_ROW, min_size=1, max_size=80), st.sampled_from(["\n", "\r\n"]), st.booleans(),
       st.sampled_from([64, 4 << 20]))
def test_a_plain_delta_parses_as_parse_entries_does(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str]], newline: str, final_newline: bool,
    chunk: int,
) -> None:
    path = tmp_path_factory.mktemp("delta") / "delta.csv"
    text = newline.join(["number,action", *(f"{n},{a}" for n, a in rows)]) + (newline if final_newline else "")
    path.write_bytes(text.encode())
    # An example of fewer than 8 digits is another shape: parse_entries reads that file.
    assert fastdelta.applies(path, "auto") == all(8 <= len(n) - 1 <= 15 for n, _ in rows)
    saved = fastlines.CHUNK_BYTES
    fastlines.CHUNK_BYTES = chunk
    try:
        _same(*_both(path))
    finally:
        fastlines.CHUNK_BYTES = saved


def test_the_last_line_of_a_number_wins_and_is_counted_superseded(tmp_path: Path) -> None:
    path = tmp_path / "delta.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write("number,action\n+12015550123,add\n+12015550124,add\n+12015550123,remove\n+120155,add\n")
    fast, slow = _both(path)
    _same(fast, slow)
    assert list(fast.adds) == [12015550124]
    assert list(fast.removes) == [12015550123]
    assert fast.superseded == 1
    assert [e.line for e in fast.invalid] == [5]


@pytest.mark.parametrize("text", [
    "action,number\n+12015550123,add\n",  # another column order
    "number,action\n+12015550123,ADD\n",  # capitals
    "number,action\n+12015550123, add\n",  # a space
    "number,action\n\n+12015550123,add\n",  # a blank line
    'number,action\n"+12015550123",add\n',  # quotes
    "number,action,category\n+12015550123,add,x\n",  # more columns
    "\ufeffnumber,action\n+12015550123,add\n",  # a BOM
    "number,action\n2015550123,add\n",  # a national form
    "+12015550123\n",  # not a CSV
])
def test_any_other_shape_is_left_to_parse_entries(tmp_path: Path, text: str) -> None:
    path = tmp_path / "delta.csv"
    path.write_bytes(text.encode())
    assert not fastdelta.applies(path, "auto")
    assert not fastdelta.applies(path, "lines")


def test_a_csv_format_delta_takes_it_too(tmp_path: Path) -> None:
    path = tmp_path / "delta.csv"
    path.write_text("number,action\n+12015550123,add\n")
    assert fastdelta.applies(path, "csv")
    assert list(parse_file(path, "csv", PLAN, delta=True).adds) == [12015550123]
