"""``dncgate lists rule``: national forms read in the list's region, whole-country prefixes refused
without --force, and a remove that removes nothing says so (issue 11.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli_store_env, run_cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DNCGATE_NATIONAL__REGION", "GB")  # the national list's region differs from the tenant's
    return cli_store_env(tmp_path, monkeypatch, "CN")


def test_a_national_prefix_is_read_in_the_tenants_region(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    national = tmp_path / "national.txt"
    national.write_text("+8613800138000\n")
    assert run_cli(capsys, "lists", "load", "--list", "national", str(national))[0] == 0  # the tenant needs it
    code, out, _ = run_cli(capsys, "lists", "rule", "add", "--list", "tenant:default", "170")
    assert (code, out.strip()) == (0, "tenant:default: prefix +86170 added")  # was +170: blocked nothing in China
    code, out, _ = run_cli(capsys, "check", "17012345678", "--tenant", "default")
    assert out.startswith("REJECT  reason=prefix_rule")
    code, out, _ = run_cli(capsys, "lists", "rule", "add", "--list", "tenant:default", "0170")
    assert (code, out.strip()) == (0, "tenant:default: prefix +86170 was already there")


def test_a_national_prefix_is_read_in_the_national_lists_region(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "lists", "rule", "add", "--list", "national", "0800")
    assert (code, out.strip()) == (0, "national: prefix +44800 added")


@pytest.mark.parametrize(("prefix", "message"), [
    ("+8", "prefix +8 is shorter than any country code: it would block every number of +81, +82"),
    ("+86", "prefix +86 is the whole of country code +86"),
    ("0086", "prefix +86 is the whole of country code +86"),
])
def test_a_prefix_no_longer_than_a_country_code_needs_force(
    env: Path, capsys: pytest.CaptureFixture[str], prefix: str, message: str,
) -> None:
    code, _, err = run_cli(capsys, "lists", "rule", "add", "--list", "tenant:default", prefix)
    assert code == 2
    assert message in err
    assert "--force" in err
    code, out, _ = run_cli(capsys, "lists", "stats")
    assert "prefix_rules" not in out  # nothing stored
    code, out, _ = run_cli(capsys, "lists", "rule", "add", "--list", "tenant:default", "--force", prefix)
    assert code == 0
    assert "added" in out
    code, out, _ = run_cli(capsys, "lists", "rule", "remove", "--list", "tenant:default", prefix)  # no --force
    assert code == 0
    assert "removed" in out


def test_removing_a_rule_that_is_not_there_says_so(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "lists", "rule", "remove", "--list", "tenant:default", "+86999")
    assert (code, out) == (1, "")
    assert "no prefix rule +86999 to remove" in err
    assert run_cli(capsys, "lists", "rule", "add", "--list", "tenant:default", "+86999")[0] == 0
    code, out, _ = run_cli(capsys, "lists", "rule", "remove", "--list", "tenant:default", "+86999")
    assert (code, out.strip()) == (0, "tenant:default: prefix +86999 removed")
    assert run_cli(capsys, "lists", "rule", "remove", "--list", "tenant:default", "+86999")[0] == 1
