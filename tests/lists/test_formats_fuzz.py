"""Fuzz every list format (issue 11): any bytes, plain, gzip or zip, give entries and numbered bad
lines or one ListFileError, never another exception; the snapshot fast path agrees with the
per-line path. A fixed, small example budget and no deadline: no dependence on machine speed."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.lists.formats import FORMATS, Entry, LineError, ListFileError, read_entries
from dncgate.lists.sync import parse_entries, parse_file
from dncgate.numbers import DialPlan

US = DialPlan(region="US")
_LINE = st.one_of(
    st.sampled_from(["+12025550100", "2025550101", "202,5550102", "202,5550103,2026-01-02,A", '"202","5550104"',
                     "01632960123 ", "020  7946000", "number,action", "+12025550105,remove", "# comment", "",
                     "\ufeff+12025550106", "+4402079460000", "+8613800138000", "x" * 5000, "a,b,c,d,e"]),
    st.text(max_size=30),
)
_TEXT = st.tuples(st.lists(_LINE, max_size=12), st.sampled_from(["\n", "\r\n", "\r"])).map(
    lambda t: t[1].join(t[0]).encode("utf-8"))
_BYTES = st.one_of(_TEXT, st.binary(max_size=200),
                   _TEXT.map(lambda b: b[: len(b) // 2] + b"\xff\xfe" + b[len(b) // 2 :]))


def _write(path: Path, data: bytes, wrap: str) -> Path:
    if wrap == "gzip":
        path.write_bytes(gzip.compress(data))
    elif wrap == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("b.txt", data)
            archive.writestr("a.txt", data[::-1])
        path.write_bytes(buffer.getvalue())
    elif wrap == "cut-gzip":
        path.write_bytes(gzip.compress(data)[: max(len(data) // 3, 3)])
    else:
        path.write_bytes(data)
    return path


@settings(max_examples=300, deadline=None)
@given(_BYTES, st.sampled_from(FORMATS), st.sampled_from(["plain", "gzip", "zip", "cut-gzip"]))
def test_any_file_gives_entries_and_numbered_errors_or_one_list_file_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, fmt: str, wrap: str,
) -> None:
    path = _write(tmp_path_factory.mktemp("fuzz") / "list", data, wrap)
    try:
        items = list(read_entries(path, fmt))
    except ListFileError as exc:
        error = str(exc)
        items = []
    else:
        error = ""
    assert not error or error.startswith(str(path))  # every error names the file
    assert all(isinstance(item, Entry | LineError) and item.line >= 1 for item in items)
    assert all(len(item.text) <= 4096 for item in items if isinstance(item, LineError))


@settings(max_examples=150, deadline=None)
@given(_BYTES, st.sampled_from(["auto", "lines"]), st.sampled_from(["plain", "gzip"]))
def test_the_snapshot_fast_path_agrees_with_the_line_path(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, fmt: str, wrap: str,
) -> None:
    path = _write(tmp_path_factory.mktemp("fuzz") / "list", data, wrap)
    outcomes = []
    for parse in (parse_file, parse_entries):
        try:
            parsed = parse(path, fmt, US, delta=False)
            outcomes.append((list(parsed.adds), list(parsed.invalid), parsed.read))
        except ListFileError as exc:
            outcomes.append(("error", str(exc).split(":")[1].split("(")[0]))  # where in a chunk may differ
    assert outcomes[0] == outcomes[1]
