"""No list file can exhaust the gate's memory (issue 11.15): lines are read with a bounded buffer,
bad lines are kept as a bounded sample and a count (all of them streamed to ``--errors``), a file of
mostly bad lines is given up on, and a compression bomb is refused. bench/hostile_lists.py measures
the peak memory of the issue's two files (200 MB of "1" in one line; 1,000,000 bad lines)."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest

from dncgate.lists import fastlines
from dncgate.lists.formats import MAX_RATIO, READ_LINE_CHARS, LineError, ListFileError, bounded_lines, read_entries
from dncgate.lists.invalid import KEPT_INVALID, InvalidLines, InvalidShare
from dncgate.lists.sync import parse_entries, parse_file
from dncgate.numbers import DialPlan
from tests.conftest import cli_store_env, run_cli

US = DialPlan(region="US")
GOOD = "+12025550100\n"


def test_a_line_of_megabytes_is_cut_at_the_read_limit_and_the_rest_dropped() -> None:
    text = io.TextIOWrapper(io.BytesIO(b"1" * (3 << 20) + b"\n" + GOOD.encode()), encoding="utf-8", newline="")
    lines = list(bounded_lines(text))
    assert [len(line) for line in lines] == [READ_LINE_CHARS + 2, len(GOOD)]
    assert lines[1] == GOOD


def test_crlf_lines_at_the_read_limit_keep_their_numbering() -> None:
    data = ("a" * READ_LINE_CHARS + "\r\n" + GOOD).encode()
    lines = list(bounded_lines(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")))
    assert lines == ["a" * READ_LINE_CHARS + "\r\n", GOOD]


@pytest.mark.parametrize(("fmt", "problem"), [
    ("lines", "line longer than 4096 characters"), ("ftc", "line longer than 4096 characters"),
    ("tps", "a TPS record has at most 12"),
])
def test_an_endless_line_is_one_bad_line_in_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, problem: str,
) -> None:
    monkeypatch.setattr(fastlines, "CHUNK_BYTES", 64 * 1024)  # the fast path hands the run to the line reader
    path = tmp_path / "endless.txt.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b"2" * (2 << 20) + b"\n")
    parsed = parse_file(path, fmt, US, delta=False)
    assert parsed.read == 1
    assert [(e.line, len(e.text) <= 80, problem in e.problem) for e in parsed.invalid] == [(1, True, True)]


def test_an_endless_csv_line_is_a_format_error_as_csv_would_say(tmp_path: Path) -> None:
    path = tmp_path / "endless.csv"
    path.write_text("number\n" + "3" * (1 << 20) + "\n")
    with pytest.raises(ListFileError, match="line 2: unreadable CSV: field larger than field limit"):
        list(read_entries(path, "csv"))


def test_the_fast_path_gives_a_newline_free_run_to_the_line_reader(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastlines, "CHUNK_BYTES", 16 * 1024)
    path = tmp_path / "run.txt"
    path.write_bytes(GOOD.encode() + b"4" * (fastlines.MAX_RUN_BYTES * 4) + b"\n" + GOOD.encode())
    with pytest.raises(fastlines.NotFast):
        fastlines.parse_lines_fast(path, lambda text: 1)
    parsed = parse_file(path, "lines", US, delta=False)
    assert list(parsed.adds) == [12025550100, 12025550100]
    assert [e.line for e in parsed.invalid] == [2]


def test_invalid_lines_keep_a_sample_and_count_and_stream_all() -> None:
    seen: list[LineError] = []
    invalid = InvalidLines(keep=3, sink=seen.append)
    for line in range(1, 11):
        invalid.append(LineError(line, "x", "bad"))
    assert (len(invalid), [e.line for e in invalid], invalid[-1].line) == (10, [1, 2, 3], 3)
    assert [e.line for e in seen] == list(range(1, 11))
    assert not invalid.complete
    more = InvalidLines(keep=3)
    more.append(LineError(99, "y", "bad"))
    invalid += more
    assert (len(invalid), [e.line for e in invalid]) == (11, [1, 2, 3])


@pytest.mark.parametrize("fast", [True, False])
def test_a_file_of_many_bad_lines_keeps_a_bounded_sample(tmp_path: Path, fast: bool) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("".join(f"not-a-number-{i}\n" for i in range(30_000)) + GOOD)
    parse = parse_file if fast else parse_entries
    seen: list[int] = []
    parsed = parse(path, "lines", US, delta=False, give_up=None, on_invalid=lambda e: seen.append(e.line))
    assert len(parsed.invalid) == 30_000
    assert len(list(parsed.invalid)) == KEPT_INVALID
    assert seen == list(range(1, 30_001))
    assert list(parsed.adds) == [12025550100]


@pytest.mark.parametrize("fast", [True, False])
def test_a_file_of_mostly_bad_lines_is_given_up(tmp_path: Path, fast: bool) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("".join(f"not-a-number-{i}\n" if i % 3 else GOOD for i in range(30_000)))
    parse = parse_file if fast else parse_entries
    with pytest.raises(ListFileError, match=r"lines are invalid \(more than 50%\)"):
        parse(path, "lines", US, delta=False)
    # A share below the limit, or a smaller file, loads: the bad lines are reported one by one.
    parsed = parse(path, "lines", US, delta=False, give_up=InvalidShare(max_share=0.7))
    assert len(parsed.invalid) == 20_000
    small = tmp_path / "small.txt"
    small.write_text("".join(f"not-a-number-{i}\n" for i in range(9_000)) + GOOD)
    assert len(parse(small, "lines", US, delta=False).invalid) == 9_000


def test_a_gzip_that_expands_more_than_the_ratio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.txt.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(GOOD.encode() + b"0" * (40 << 20))  # 40 MB in one line: about 40 KB
    assert (40 << 20) / path.stat().st_size > 10 * MAX_RATIO
    for parse in (parse_file, parse_entries):
        with pytest.raises(ListFileError, match="refused as a compression bomb"):
            parse(path, "lines", US, delta=False)


def test_a_zip_member_declaring_more_than_the_ratio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("a.txt", GOOD + "\n" * (20 << 20))
    with pytest.raises(ListFileError, match=f"zip member 'a.txt' expands more than {MAX_RATIO}:1"):
        list(read_entries(path))


def test_an_ordinary_gzip_list_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "list.txt.gz"
    with gzip.open(path, "wt") as out:
        out.writelines(f"+1202555{i:04d}\n" for i in range(100, 5000))
    assert len(parse_file(path, "lines", US, delta=False).adds) == 4900


def test_lists_load_streams_every_bad_line_to_the_errors_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    cli_store_env(tmp_path, monkeypatch, "US")
    path = tmp_path / "list.txt"
    path.write_text("".join(f"+1202555{i:04d}\n" for i in range(100, 9000))
                    + "".join(f"bad-{i}\n" for i in range(3000)))
    errors = tmp_path / "errors.jsonl"
    code, out, _ = run_cli(capsys, "lists", "load", "--list", "national", "--errors", str(errors), str(path))
    assert code == 0
    assert "invalid 3,000" in out
    assert [json.loads(line)["text"] for line in errors.read_text().splitlines()] == [f"bad-{i}" for i in range(3000)]
