"""The command line, run in-process: lists, check, audit, config; errors are one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dncgate.cli import main
from tests.conftest import cli_store_env, run_cli

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lists"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return cli_store_env(tmp_path, monkeypatch, "CN")


run = run_cli


def test_load_stats_check_audit(env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    errors = tmp_path / "errors.jsonl"
    code, out, _ = run(capsys, "lists", "load", "--list", "national", "--region", "CN", "--errors", str(errors),
                       str(FIXTURES / "sample.txt"))
    assert code == 0
    assert "national: read 7 lines; loaded 3 as version" in out
    assert "duplicates 1; invalid 3" in out
    assert "line 7: 'not-a-number'" in out
    assert [json.loads(line)["line"] for line in errors.read_text().splitlines()] == [7, 8, 9]

    code, out, _ = run(capsys, "lists", "rule", "add", "--list", "tenant:default", "+86170")
    assert (code, out.strip()) == (0, "tenant:default: prefix +86170 added")

    code, out, _ = run(capsys, "lists", "stats")
    assert code == 0
    assert "national" in out
    assert "numbers=3" in out

    code, out, _ = run(capsys, "check", "13800138000", "--tenant", "default")
    assert code == 1  # reject
    assert out.startswith("REJECT  reason=national_dnc")
    assert "sip=607" in out

    code, out, _ = run(capsys, "check", "+8617012345678")
    assert out.startswith("REJECT  reason=prefix_rule")

    code, out, _ = run(capsys, "check", "13800138000", "--purpose", "service")
    assert out.startswith("ALLOW  reason=allowed_service")
    assert code == 0

    code, out, _ = run(capsys, "audit", "tail", "-n", "2", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["reason"] for r in records] == ["prefix_rule", "allowed_service"]

    export = tmp_path / "audit.jsonl"
    code, _, err = run(capsys, "audit", "export", "--json", "--output", str(export))
    assert code == 0
    assert "exported 3 records" in err
    assert len(export.read_text().splitlines()) == 3


def test_config_check(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "check")
    assert code == 0
    assert "configuration OK" in out
    assert "tenant default: region CN" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lists", "load", "--list", "everything", "x.txt"], "list name 'everything'"),
        (["lists", "load", "--list", "national", "/nonexistent/list.txt"], "cannot open"),
        (["lists", "rule", "add", "--list", "national", "86x"], "prefix '86x'"),
        (["--config", "/nonexistent.toml", "config", "check"], "configuration error"),
    ],
)
def test_errors_are_one_clear_line(env: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                   message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_bad_config_value_names_key(env: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGATE_TENANTS__DEFAULT__REJECT_SIP_CODE", "486")
    code, _, err = run(capsys, "config", "check")
    assert code == 2
    assert "tenants.default.reject_sip_code: 486 is not one of 603, 607, 608" in err


@pytest.mark.parametrize("value", ["-1", "0", "many"])
def test_audit_tail_needs_a_positive_count(env: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "tail", "-n", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument -n" in err
    assert "Traceback" not in err
