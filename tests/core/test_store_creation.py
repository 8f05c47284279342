"""Only commands that write lists, and ``dncgate init``, create a SQLite store (issue 11 item 1).

A program that only reads (check, serve, audit, lists stats, consent) given a path that does not
exist exits 2 naming it, and creates nothing: neither the file, nor its directory, nor the audit
spool beside it. An empty new store would answer every check "not listed".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dncgate.cli import _config, parser
from tests.conftest import run_cli

LISTED = "+8613800138000"


@pytest.fixture
def missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store path under a directory that does not exist, in the environment of the CLI."""
    path = tmp_path / "nonexistent" / "x.sqlite3"
    monkeypatch.setenv("DNCGATE_STORE__PATH", str(path))
    monkeypatch.setenv("DNCGATE_TENANTS__DEFAULT__REGION", "CN")
    monkeypatch.delenv("DNCGATE_CONFIG", raising=False)
    return path


@pytest.mark.parametrize("argv", [
    ("check", LISTED),
    ("serve",),
    ("audit", "tail"),
    ("audit", "export"),
    ("lists", "stats"),
    ("consent", "export", "--tenant", "default", "--output", "export.jsonl"),
    ("consent", "purge", "--tenant", "default", "--before", "2020-01-01T00:00:00Z", "--by", "ops"),
], ids=lambda argv: "-".join(argv[:2]))
def test_a_reading_command_exits_2_naming_the_missing_store_and_creates_nothing(
    missing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert f"the SQLite store {missing} does not exist" in err
    assert "dncgate init" in err
    assert not missing.parent.exists()  # no directory, no file, no audit spool beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_init_creates_the_store_and_its_directory_and_prints_the_absolute_path(
    missing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = run_cli(capsys, "init")
    assert (code, out.strip()) == (0, f"sqlite store {missing}: created")
    assert missing.is_file()
    code, out, _ = run_cli(capsys, "init")  # again: nothing lost, said so
    assert (code, out.strip()) == (0, f"sqlite store {missing}: already there, schema checked")
    code, out, _ = run_cli(capsys, "lists", "stats")
    assert (code, out.strip()) == (0, "no lists loaded")


def test_init_with_a_relative_path_prints_where_the_file_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DNCGATE_STORE__PATH", "rel.sqlite3")
    monkeypatch.delenv("DNCGATE_CONFIG", raising=False)
    code, out, _ = run_cli(capsys, "init")
    assert (code, out.strip()) == (0, f"sqlite store {tmp_path / 'rel.sqlite3'}: created")


def test_a_list_load_creates_the_store_it_writes(
    missing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    numbers = tmp_path / "national.txt"
    numbers.write_text(LISTED + "\n")
    code, out, err = run_cli(capsys, "lists", "load", "--list", "national", str(numbers))
    assert code == 0, err
    assert "loaded 1 as version" in out
    assert missing.is_file()
    code, out, _ = run_cli(capsys, "check", LISTED)
    assert code == 1  # reject (dncgate.cli.codes)
    assert out.startswith("REJECT  reason=national_dnc")


def test_the_demo_store_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DNCGATE_CONFIG", raising=False)
    config = _config(parser().parse_args(["serve", "--demo"]), str(tmp_path / "no-system-config.toml"))
    assert config.store.path == tmp_path / "dncgate-demo.sqlite3"
    assert config.store.path.is_absolute()
