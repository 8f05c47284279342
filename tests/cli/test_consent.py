"""``dncgate consent grant|revoke``: recorded in the ledger through the API's path, with the command
line's evidence (the OS user, the command line, the time), and read by the next check; both stores."""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import RedisServer, run_cli

EVIDENCE = ["--channel", "paper", "--source", "form 17", "--shown", "template marketing-v2"]


@pytest.fixture(params=["sqlite", "redis"])
def opt_in(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> str:
    """An opt-in CN tenant acme (calling hours off) on a fresh store of each kind."""
    for name in [n for n in os.environ if n.startswith("DNCGATE_")]:
        monkeypatch.delenv(name)
    if request.param == "redis":
        redis_server.flush()
    monkeypatch.setenv("DNCGATE_STORE__BACKEND", request.param)
    monkeypatch.setenv("DNCGATE_STORE__PATH", str(tmp_path / "dncgate.sqlite3"))
    monkeypatch.setenv("DNCGATE_STORE__URL", redis_server.url)
    monkeypatch.setenv("DNCGATE_TENANTS__ACME__REGION", "CN")
    monkeypatch.setenv("DNCGATE_TENANTS__ACME__POLICY", "opt-in")
    monkeypatch.setenv("DNCGATE_TENANTS__ACME__HOURS__ENABLED", "false")
    national = tmp_path / "national.txt"
    national.write_text("+8613900139000\n", encoding="utf-8")  # a live national list: the store, and no list_missing
    code, _, err = run_cli(capsys, "lists", "load", "--list", "national", "--region", "CN", str(national))
    assert code == 0, err
    return str(request.param)


def check(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run_cli(capsys, "check", "--json", "13800138000", "--tenant", "acme", "--entity", "shop",
                             "--category", "travel")
    assert code in (0, 1), err
    reason: str = json.loads(out)["reason"]
    return reason


def test_grant_then_revoke(opt_in: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(capsys) == "no_consent"
    before = datetime.now(UTC)
    code, out, err = run_cli(capsys, "consent", "grant", "0086 138 0013 8000", "--tenant", "acme", "--entity", "shop",
                             "--category", "travel", *EVIDENCE)
    assert code == 0, err
    answer = json.loads(out)
    record, consent = answer["record"], answer["consent"]
    assert (record["action"], record["callee"], record["entity"], record["categories"]) == (
        "grant", "+8613800138000", "shop", ["travel"])
    evidence = record["evidence"]
    assert (evidence["channel"], evidence["source"], evidence["shown"]) == ("paper", "form 17", "template marketing-v2")
    assert evidence["captured_by"] == f"{getpass.getuser()} (dncgate consent grant)"
    assert before <= datetime.fromisoformat(evidence["captured_at"]) <= datetime.now(UTC)
    assert record["detail"].startswith(f"cli: user {getpass.getuser()} at ")
    assert record["detail"].endswith(": dncgate --log-level error consent grant '0086 138 0013 8000' --tenant acme "
                                     "--entity shop --category travel --channel paper --source 'form 17' "
                                     "--shown 'template marketing-v2'")
    assert (record["seq"], len(record["hash"])) == (1, 64)  # sealed in the tenant's chain
    assert (consent["status"], consent["categories"]) == ("granted", ["travel"])
    assert check(capsys) == "allowed_consent"

    code, out, err = run_cli(capsys, "consent", "revoke", "+8613800138000", "--tenant", "acme", "--entity", "shop",
                             *EVIDENCE, "--captured-at", "2026-12-01T09:00:00+08:00")
    assert code == 0, err
    record, consent = json.loads(out)["record"], json.loads(out)["consent"]
    assert (record["action"], record["seq"], consent["status"]) == ("revoke", 2, "revoked")
    assert record["evidence"]["captured_at"] == "2026-12-01T01:00:00.000000+00:00"
    assert check(capsys) == "consent_revoked"


@pytest.mark.parametrize(("argv", "message"), [
    (["13800138000", "--tenant", "nosuch"], "--tenant nosuch: no tenant 'nosuch' is configured (tenants: acme)"),
    (["12", "--tenant", "acme"], "'12' is not a subscriber number in CN"),
    (["13800138000", "--tenant", "acme", "--captured-at", "yesterday"], "--captured-at: 'yesterday' is not"),
])
def test_bad_grants_are_one_line_and_exit_2(opt_in: str, capsys: pytest.CaptureFixture[str], argv: list[str],
                                            message: str) -> None:
    code, out, err = run_cli(capsys, "consent", "grant", *argv, "--entity", "shop", *EVIDENCE)
    assert (code, out) == (2, "")
    assert message in err
    assert "Traceback" not in err
