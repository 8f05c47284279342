"""FTC, TPS, zip and gzip samples: every line is an entry or a numbered error, none is lost."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from dncgate.lists.formats import Entry, LineError, ListFileError, read_entries

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lists"


def _split(items: list[Entry | LineError]) -> tuple[list[Entry], list[LineError]]:
    return [i for i in items if isinstance(i, Entry)], [i for i in items if isinstance(i, LineError)]


def test_ftc_full_list() -> None:
    entries, errors = _split(list(read_entries(FIXTURES / "ftc-full-201.txt", "ftc")))
    assert [(e.line, e.number, e.action) for e in entries] == [
        (1, "+12015550123", "add"), (2, "+12015550124", "add"), (3, "+12015550125", "add"),
        (4, "+12015550126", "add"),
    ]
    assert [(e.line, e.problem.split(" ")[0]) for e in errors] == [(5, "number"), (6, "area"), (7, "number")]
    assert len(entries) + len(errors) == len((FIXTURES / "ftc-full-201.txt").read_text().splitlines())


def test_ftc_change_list() -> None:
    entries, errors = _split(list(read_entries(FIXTURES / "ftc-changes-201.txt", "ftc")))
    assert [(e.number, e.action, e.effective_at) for e in entries] == [
        ("+12015550130", "add", "2026-11-02"), ("+12015550123", "remove", "2026-11-03"),
        ("+12015550133", "add", None),  # the full-list layout inside a change file is an add, undated
    ]
    assert [e.line for e in errors] == [3, 4]
    assert "change type 'X'" in errors[0].problem
    assert "change date" in errors[1].problem
    assert len(entries) + len(errors) == 5


def test_tps_fixed_and_short_records() -> None:
    raw = (FIXTURES / "tps-sample.txt").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")  # the sample really is CRLF
    entries, errors = _split(list(read_entries(FIXTURES / "tps-sample.txt", "tps")))
    assert [(e.line, e.number) for e in entries] == [
        (1, "+441632960001"), (2, "+44207946000"), (3, "+447700900123"),
    ]
    assert [(e.line, e.problem) for e in errors] == [
        (5, "a UK national number starts with a single 0"),
        (6, "not digits"),
        (7, "13 characters: a TPS record has at most 12"),
        (8, "a UK national number starts with a single 0"),
        (9, "4 digits: a UK national number has 10 or 11"),
    ]


def test_csv_delta_sample_checks_effective_time() -> None:
    entries, errors = _split(list(read_entries(FIXTURES / "delta-sample.csv")))
    assert [(e.number, e.action, e.category) for e in entries] == [
        ("+12015550140", "add", None), ("+12015550141", "add", "finance"), ("+12015550123", "remove", None),
    ]
    assert [(e.line, "effective_at 'yesterday'" in e.problem) for e in errors] == [(5, True)]


def test_gzip_sample_reads_like_the_plain_file() -> None:
    assert list(read_entries(FIXTURES / "sample.txt.gz")) == list(read_entries(FIXTURES / "sample.txt"))


def test_zip_members_are_read_in_name_order_and_errors_name_the_member() -> None:
    entries, errors = _split(list(read_entries(FIXTURES / "ftc-201-202.zip", "ftc")))
    assert [e.number for e in entries] == ["+12015550123", "+12015550124", "+12025550100"]
    assert [(e.line, e.problem.split(":")[0]) for e in errors] == [(2, "202.txt")]


def test_corrupt_zip_and_unknown_format_are_clear_errors(tmp_path: Path) -> None:
    data = (FIXTURES / "ftc-201-202.zip").read_bytes()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ListFileError, match="corrupt zip"):
        list(read_entries(broken, "ftc"))
    with pytest.raises(ListFileError, match="unknown format"):
        list(read_entries(FIXTURES / "sample.txt", "xml"))


def test_zip_of_tps_records(tmp_path: Path) -> None:
    path = tmp_path / "tps.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tps.txt", (FIXTURES / "tps-sample.txt").read_bytes())
    assert [e.number for e in read_entries(path, "tps") if isinstance(e, Entry)] == [
        "+441632960001", "+44207946000", "+447700900123",
    ]
