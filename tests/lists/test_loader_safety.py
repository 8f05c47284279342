"""``lists load`` cannot wipe a list by accident, and means by a file what ``lists sync`` means:
a replace that yields no valid numbers (a wrong format, an empty archive) or shrinks the list past
sync's guard is refused with the list untouched; a delta's last line for a number wins."""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dncgate.lists.loader import LoadRefused, load_file
from dncgate.lists.sync import parse_entries
from dncgate.numbers import DialPlan
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import cli_store_env, run_cli

US = DialPlan(region="US")
LIVE = [12025550100 + i for i in range(100)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteListStore]:
    backend = SqliteListStore(tmp_path / "lists.sqlite3")
    await backend.replace_list("national", LIVE)
    try:
        yield backend
    finally:
        await backend.close()


async def _count(store: SqliteListStore, name: str = "national") -> int:
    return next((s.count for s in await store.stats() if s.list_name == name), 0)


def _empty_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w"):
        pass
    return path


@pytest.mark.parametrize("kind", ["ftc-as-lines", "empty-file", "empty-zip", "comments-only"])
async def test_a_replace_with_no_valid_numbers_is_refused(store: SqliteListStore, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "list.txt"
    if kind == "ftc-as-lines":
        path.write_text("202,5550100\n202,5550101\n")  # the FTC layout, read one number a line
    elif kind == "empty-file":
        path.write_bytes(b"")
    elif kind == "comments-only":
        path.write_text("# nothing today\n\n")
    else:
        path = _empty_zip(tmp_path / "list.zip")
    before = (await store.stats())[0].version
    with pytest.raises(LoadRefused, match="no valid numbers") as refused:
        await load_file(store, "national", path, US)
    assert refused.value.summary.loaded == 0
    assert len(refused.value.summary.invalid) == (2 if kind == "ftc-as-lines" else 0)
    assert await _count(store) == len(LIVE)
    assert (await store.stats())[0].version == before
    assert (await store.facts("t", LIVE[0])).national is not None


async def test_allow_empty_empties_the_list_on_purpose(store: SqliteListStore, tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    summary = await load_file(store, "national", path, US, allow_empty=True, max_shrink=0.05)
    assert summary.loaded == 0
    assert await _count(store) == 0


async def test_a_replace_that_shrinks_past_the_guard_needs_force(store: SqliteListStore, tmp_path: Path) -> None:
    path = tmp_path / "half.txt"
    path.write_text("".join(f"+{n}\n" for n in LIVE[:50]))
    with pytest.raises(LoadRefused, match="shrink of more than 5%"):
        await load_file(store, "national", path, US, max_shrink=0.05)
    assert await _count(store) == len(LIVE)
    assert (await load_file(store, "national", path, US, max_shrink=0.05, force=True)).loaded == 50
    assert (await load_file(store, "national", path, US)).loaded == 50  # no guard asked for
    near = tmp_path / "near.txt"
    near.write_text("".join(f"+{n}\n" for n in LIVE[:48]))
    assert (await load_file(store, "national", near, US, max_shrink=0.05)).loaded == 48  # within 5%


async def test_a_delta_applies_the_last_line_for_a_number_like_sync(store: SqliteListStore, tmp_path: Path) -> None:
    path = tmp_path / "delta.csv"
    path.write_text("number,action,effective_at\n"
                    f"+{LIVE[0]},remove,2024-01-01\n+{LIVE[0]},add,2024-02-01\n"  # re-registered: stays
                    "+12025550900,add,\n+12025550900,remove,\n"  # added then withdrawn: not listed
                    f"+{LIVE[1]},remove,\n")
    summary = await load_file(store, "national", path, US, delta=True)
    expected = parse_entries(path, "auto", US, delta=True)
    assert list(expected.adds) == [LIVE[0]]
    assert sorted(expected.removes) == [LIVE[1], 12025550900]
    assert (await store.facts("t", LIVE[0])).national is not None
    assert (await store.facts("t", 12025550900)).national is None
    assert (await store.facts("t", LIVE[1])).national is None
    assert (summary.removed, summary.duplicates, summary.read) == (1, 2, 5)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return cli_store_env(tmp_path, monkeypatch, "US")


_run = run_cli


def test_cli_refuses_to_wipe_the_national_list(env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good, ftc = tmp_path / "good.txt", tmp_path / "ftc.txt"
    good.write_text("+12025550100\n+12025550101\n")
    ftc.write_text("202,5550100\n202,5550101\n")
    assert _run(capsys, "lists", "load", "--list", "national", str(good))[0] == 0
    code, out, err = _run(capsys, "lists", "load", "--list", "national", str(ftc))
    assert code == 1
    assert "national: not replaced" in err
    assert "all 2 lines were invalid" in err
    assert "--allow-empty" in err
    assert "line 1: '202,5550100'" in out
    assert "Traceback" not in err
    assert "numbers=2 " in _run(capsys, "lists", "stats")[1]
    code, out, _ = _run(capsys, "lists", "load", "--list", "national", "--format", "ftc", str(ftc))  # as it is meant
    assert (code, "loaded 2 as version" in out) == (0, True)
    assert _run(capsys, "lists", "load", "--list", "national", "--allow-empty", "--format", "lines", str(ftc))[0] == 0
    assert "numbers=0 " in _run(capsys, "lists", "stats")[1]


def test_cli_applies_the_sync_shrink_guard(env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    full, half = tmp_path / "full.txt", tmp_path / "half.txt"
    full.write_text("".join(f"+{n}\n" for n in LIVE))
    half.write_text("".join(f"+{n}\n" for n in LIVE[:50]))
    assert _run(capsys, "lists", "load", "--list", "national", str(full))[0] == 0
    code, _, err = _run(capsys, "lists", "load", "--list", "national", str(half))
    assert code == 1
    assert "shrink of more than 5%" in err
    assert "numbers=100 " in _run(capsys, "lists", "stats")[1]
    assert _run(capsys, "lists", "load", "--list", "national", "--force", str(half))[0] == 0
    assert "numbers=50 " in _run(capsys, "lists", "stats")[1]
