"""List files: formats, gzip, bad lines reported with their numbers, loads into a real store."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dncgate.lists.entries import number_of
from dncgate.lists.formats import Entry, LineError, ListFileError, read_entries
from dncgate.lists.loader import load_file
from dncgate.numbers import DialPlan
from dncgate.store.sqlite import SqliteListStore

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lists"
CN = DialPlan(region="CN")
US = DialPlan(region="US")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteListStore]:
    backend = SqliteListStore(tmp_path / "lists.sqlite3")
    try:
        yield backend
    finally:
        await backend.close()


def test_one_number_a_line() -> None:
    items = list(read_entries(FIXTURES / "sample.txt"))
    assert [i.line for i in items] == [2, 3, 5, 6, 7, 8, 9]
    assert all(isinstance(i, Entry) for i in items)


def test_csv_with_header() -> None:
    items = list(read_entries(FIXTURES / "sample.csv"))
    entries = [i for i in items if isinstance(i, Entry)]
    errors = [i for i in items if isinstance(i, LineError)]
    assert entries[0] == Entry(2, "+12015550123", "add", "finance", "2026-11-01T00:00:00Z")
    assert entries[1].action == "remove"
    assert [(e.line, e.problem) for e in errors] == [
        (6, "action 'delete' is not add or remove"),
        (7, "2 fields, header has 4"),
    ]


def test_gzip_is_detected(tmp_path: Path) -> None:
    packed = tmp_path / "sample.txt.gz"
    with (FIXTURES / "sample.txt").open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert list(read_entries(packed)) == list(read_entries(FIXTURES / "sample.txt"))


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    packed = tmp_path / "broken.gz"
    data = gzip.compress(b"+8613800138000\n" * 1000)
    packed.write_bytes(data[: len(data) // 2])
    with pytest.raises(ListFileError, match="corrupt gzip"):
        list(read_entries(packed))


def test_binary_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "list.bin"
    path.write_bytes(b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(ListFileError, match="not UTF-8"):
        list(read_entries(path))


def test_missing_file_and_csv_without_number_column(tmp_path: Path) -> None:
    with pytest.raises(ListFileError, match="cannot open"):
        list(read_entries(tmp_path / "nope.txt"))
    path = tmp_path / "bad.csv"
    path.write_text("phone,action\n+12015550123,add\n")
    with pytest.raises(ListFileError, match="no 'number' column"):
        list(read_entries(path, "csv"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+8613800138000", 8613800138000),
        ("13800138000", 8613800138000),
        ("+999123456789", "unknown country code"),
        ("110", "a short or emergency number, not a subscriber"),
        ("+86138", "not a valid number for its country"),
    ],
)
def test_number_of(text: str, expected: int | str) -> None:
    assert number_of(text, CN) == expected


async def test_load_reports_every_bad_line(store: SqliteListStore) -> None:
    summary = await load_file(store, "national", FIXTURES / "sample.txt", CN)
    assert summary.loaded == 3
    assert summary.duplicates == 1
    assert summary.read == 7
    assert [(e.line, e.text) for e in summary.invalid] == [(7, "not-a-number"), (8, "110"), (9, "+999123456789")]
    assert (await store.facts("t", 8613900139000)).national is not None
    assert (await store.facts("t", 8613700137000)).national is not None


async def test_snapshot_refuses_removes_and_delta_applies_them(store: SqliteListStore) -> None:
    await store.replace_list("tenant:acme", [12025550100])
    snapshot = await load_file(store, "tenant:acme", FIXTURES / "sample.csv", US)
    assert any(e.problem == "remove in a full snapshot" for e in snapshot.invalid)
    assert (await store.facts("acme", 12025550100)).tenant_list is None  # replaced by the snapshot
    await store.add_numbers("tenant:acme", [12025550100])
    delta = await load_file(store, "tenant:acme", FIXTURES / "sample.csv", US, delta=True)
    assert delta.removed == 1
    assert (await store.facts("acme", 12025550100)).tenant_list is None
    assert (await store.facts("acme", 12015550123)).tenant_list is not None
    lines = {e.line for e in delta.invalid}
    assert lines == {5, 6, 7}
