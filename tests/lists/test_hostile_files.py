"""Hostile list files are a clear format error, never a traceback: a CSV field over the csv
module's limit, an encrypted zip member, a zip compression method Python cannot read. ``lists
load`` says so and leaves the list alone; ``lists sync`` counts a failed sync and keeps serving."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from dncgate.cli import main
from dncgate.lists.formats import Entry, ListFileError, read_entries
from dncgate.lists.manifest import file_entry
from dncgate.lists.sources import DropDirSource
from dncgate.lists.sync import Syncer, SyncError, SyncJob, SyncReport
from dncgate.store.sqlite import SqliteListStore
from tests.lists.sync_helpers import numbers, write_manifest, write_snapshot


def _zip(path: Path, *, flags: int = 0, method: int | None = None) -> Path:
    """A one-member stored zip, its flags or compression method then patched in both headers."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("a.txt", "+12025550100\n")
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    for offset in (6, central + 8):  # general purpose flags: local header, central directory
        struct.pack_into("<H", data, offset, struct.unpack_from("<H", data, offset)[0] | flags)
    if method is not None:
        for offset in (8, central + 10):
            struct.pack_into("<H", data, offset, method)
    path.write_bytes(bytes(data))
    return path


def hostile(kind: str, directory: Path) -> Path:
    if kind == "big-field":
        path = directory / "big.csv"
        path.write_text("number,category\n+12025550100," + "x" * 200_000 + "\n")
        return path
    if kind == "encrypted-zip":
        return _zip(directory / "enc.zip", flags=0x1)
    return _zip(directory / "shrunk.zip", method=1)  # "shrink": not supported by zipfile


KINDS = ["big-field", "encrypted-zip", "unsupported-zip"]
PROBLEMS = {"big-field": "line 2: unreadable CSV: field larger than field limit",
            "encrypted-zip": "zip member 'a.txt' is encrypted",
            "unsupported-zip": "zip member 'a.txt' cannot be read: That compression method is not supported"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_file_is_a_list_file_error(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ListFileError, match=PROBLEMS[kind]):
        list(read_entries(hostile(kind, tmp_path)))


def test_a_plain_zip_still_reads(tmp_path: Path) -> None:
    assert [e.number for e in read_entries(_zip(tmp_path / "plain.zip")) if isinstance(e, Entry)] == ["+12025550100"]


@pytest.mark.parametrize("kind", KINDS)
def test_lists_load_reports_it_and_keeps_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    monkeypatch.setenv("DNCGATE_STORE__PATH", str(tmp_path / "cli.sqlite3"))
    monkeypatch.setenv("DNCGATE_TENANTS__DEFAULT__REGION", "US")
    monkeypatch.delenv("DNCGATE_CONFIG", raising=False)
    good = tmp_path / "good.txt"
    good.write_text("+12025550101\n+12025550102\n")
    assert main(["--log-level", "error", "lists", "load", "--list", "national", str(good)]) == 0
    capsys.readouterr()
    code = main(["--log-level", "error", "lists", "load", "--list", "national", str(hostile(kind, tmp_path))])
    _, err = capsys.readouterr()
    assert code == 2
    assert PROBLEMS[kind] in err
    assert "Traceback" not in err
    main(["--log-level", "error", "lists", "stats"])
    assert "numbers=2 " in capsys.readouterr().out


class Observer:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def succeeded(self, list_name: str, report: SyncReport, count: int | None) -> None:
        pass

    def failed(self, list_name: str, cause: str) -> None:
        self.failures.append(cause)


@pytest.mark.parametrize("kind", KINDS)
async def test_lists_sync_counts_a_failed_sync_and_keeps_the_live_list(tmp_path: Path, kind: str) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    store = SqliteListStore(tmp_path / "gate.sqlite3")
    observer = Observer()
    syncer = Syncer(store, DropDirSource(drop), SyncJob(workdir=tmp_path / "w"), observer=observer)
    try:
        write_manifest(drop, write_snapshot(drop, 1, numbers(0, 10)), name="1.manifest.json")
        await syncer.sync_once()
        bad = hostile(kind, drop)
        write_manifest(drop, file_entry(bad, 2), name="2.manifest.json")
        with pytest.raises(SyncError, match=PROBLEMS[kind]) as failed:
            await syncer.sync_once()
        assert failed.value.cause == "format"
        assert observer.failures == ["format"]
        assert next(s.count for s in await store.stats() if s.list_name == "national") == 10
        assert (await store.facts("t", numbers(0, 1)[0])).national is not None
    finally:
        await store.close()
