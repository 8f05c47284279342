"""The README's demo examples run as written against ``serve --demo``'s store and answer what
their comments say; its worked calling-hours example means what it says; its exit code table is
``dncgate.cli.codes``; the demo banner shows the README's examples."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shlex
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from dncgate.cli import codes, serve
from dncgate.cli.base import with_store
from dncgate.hours import outside_hours
from dncgate.settings import load
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def block(marker: str) -> str:
    """The fenced block after ``<!-- marker`` up to ``<!-- /marker -->``."""
    found = re.search(rf"<!-- {re.escape(marker)}[^>]*-->\n```\w*\n(.*?)```\n<!-- /{re.escape(marker)} -->",
                      README, re.S)
    assert found is not None, marker
    return found[1]


def examples(marker: str) -> list[tuple[list[str], str]]:
    """(argv after ``dncgate``, the comment) for each line of a demo block."""
    found = []
    for line in block(marker).splitlines():
        command, _, comment = line.partition("#")
        argv = shlex.split(command)
        assert argv[:2] == ["dncgate", "--demo"], line
        found.append((argv[1:], comment.strip()))
    return found


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory like a checkout's, where ``serve --demo`` loaded its lists into dncgate-demo.sqlite3."""
    for name in [n for n in os.environ if n.startswith("DNCGATE_")]:
        monkeypatch.delenv(name)
    (tmp_path / "dncgate").symlink_to(ROOT / "dncgate")  # the README's relative paths: dncgate/demo/...
    monkeypatch.chdir(tmp_path)
    settings = load(serve.demo_config())
    store = msgspec.structs.replace(settings.store, path=(tmp_path / serve.DEMO_DB).absolute())
    settings = dataclasses.replace(settings, store=store)
    asyncio.run(with_store(settings, serve.load_demo, create=True))  # what serve --demo does before it serves
    return tmp_path


def expected(comment: str) -> set[tuple[str, str]]:
    """The (verdict, reason) pairs a comment allows: its first, and any it names for other hours."""
    pairs = re.findall(r"\b(ALLOW|REJECT) ([a-z_]+)", comment)
    assert pairs, comment
    return {(verdict.lower(), reason) for verdict, reason in pairs}


def test_quick_start_examples_answer_what_they_say(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = examples("demo examples")
    assert len(found) >= 6
    for argv, comment in found:
        code, out, err = run_cli(capsys, *argv)
        first = out.splitlines()[0] if out else ""
        verdict, reason = first.split()[0].lower(), first.split()[1].removeprefix("reason=")
        assert (verdict, reason) in expected(comment), (argv, out, err)
        assert code == (codes.ALLOW if verdict == "allow" else codes.REJECT), (argv, err)


def test_list_examples_run_in_order(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, comment in examples("demo list examples"):
        code, out, err = run_cli(capsys, *argv)
        if argv[1] == "check":
            ((verdict, reason),) = expected(comment)
            assert out.split()[:2] == [verdict.upper(), f"reason={reason}"], out
        else:
            assert code == codes.OK, (argv, err)
    _, out, _ = run_cli(capsys, "--demo", "lists", "stats", "--json")
    acme = [json.loads(line) for line in out.splitlines() if '"tenant:acme"' in line]
    assert [(s["numbers"], s["prefix_rules"]) for s in acme] == [(2, 1)]


def test_the_banner_shows_the_readme_examples() -> None:
    readme = [(" ".join(argv[1:]), comment) for argv, comment in examples("demo examples")]
    assert readme == list(serve.DEMO_EXAMPLES)


def test_exit_code_table_is_the_codes_module() -> None:
    rows = [line for line in block_lines("exit codes") if re.match(r"\| \d+ \|", line)]
    assert rows == [f"| {code} | {text} |" for code, text in codes.TABLE]


def block_lines(marker: str) -> list[str]:
    found = re.search(rf"<!-- {re.escape(marker)}[^>]*-->\n(.*?)<!-- /{re.escape(marker)} -->", README, re.S)
    assert found is not None, marker
    return found[1].splitlines()


def test_the_worked_hours_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("DNCGATE_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "dncgate.toml"
    config.write_text('[tenants.acme]\nregion = "CN"\n' + block("hours example"), encoding="utf-8")
    hours = load(config).tenants["acme"].hours
    assert hours is not None

    def inside(digits: str, *at: int) -> bool:
        return outside_hours(hours, digits, datetime(*at, tzinfo=SHANGHAI)) is None  # type: ignore[misc]

    beijing, urumqi = "8613800138000", "8699112345678"
    assert inside(beijing, 2026, 12, 1, 19, 30)  # Tuesday, 09:00-20:00
    assert not inside(beijing, 2026, 12, 1, 20, 30)
    assert not inside(beijing, 2026, 12, 5, 19, 30)  # Saturday, 10:00-18:00
    assert not inside(beijing, 2026, 10, 1, 10, 0)  # a holiday: closed
    assert not inside(urumqi, 2026, 12, 1, 10, 30)  # 08:30 in Urumqi
    assert inside(urumqi, 2026, 12, 1, 11, 30)
