"""``dncgate audit tail|export``: filters (tenant, number in any dialled form, reason, since/until)
on both stores, ``--json``, the readable default, and ``| head`` ending quietly."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dncgate.audit_record import RECORD_KEYS, AuditRecord
from tests.conftest import RedisServer, open_test_store, run_cli

DNCGATE = Path(sys.executable).parent / "dncgate"


def record(n: int, *, tenant: str, dialled: str, callee: str, reason: str, at: str) -> AuditRecord:
    verdict = "allow" if reason.startswith("allowed") else "reject"
    return AuditRecord(
        decision_id=f"{n:032x}", at=at, tenant=tenant, door="agi", account="acme-out", trunk="", caller_id="",
        dialled=dialled, callee=callee, purpose="marketing", category=None, verdict=verdict, outcome=verdict,
        reason=reason, list_name=None, list_version=None, mode="enforce", sip_code=None, latency_us=100,
    )


RECORDS = [
    record(1, tenant="cn", dialled="13800138000", callee="+8613800138000", reason="national_dnc",
           at="2026-11-30T23:59:59.000000+00:00"),
    record(2, tenant="cn", dialled="008613800138000", callee="+8613800138000", reason="allowed_service",
           at="2026-12-01T00:00:00.000000+00:00"),
    record(3, tenant="us", dialled="2015550123", callee="+12015550123", reason="allowed_clear",
           at="2026-12-01T12:00:00.000000+00:00"),
    record(4, tenant="cn", dialled="+86 138 0013 8000", callee="+8613800138000", reason="national_dnc",
           at="2026-12-02T08:00:00.000000+00:00"),
    record(5, tenant="us", dialled="1-800-NOT-A", callee="", reason="invalid_number",
           at="2026-12-02T09:00:00.000000+00:00"),
]


def seed(kind: str, tmp_path: Path, redis_server: RedisServer, records: list[AuditRecord]) -> None:
    """``records`` in a fresh store of ``kind``, beside a live national list (a gate's store)."""

    async def append() -> None:
        store = await open_test_store(kind, tmp_path, redis_server)
        try:
            await store.replace_list("national", [8613900139000])
            await store.append_audit(records)
        finally:
            await store.close()

    asyncio.run(append())


@pytest.fixture(params=["sqlite", "redis"])
def audit_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              redis_server: RedisServer) -> str:
    """The five records above in a fresh store of each kind; the CLI pointed at it, tenants cn and us."""
    kind: str = request.param
    seed(kind, tmp_path, redis_server, RECORDS)
    for name in [n for n in os.environ if n.startswith("DNCGATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DNCGATE_STORE__BACKEND", kind)
    monkeypatch.setenv("DNCGATE_STORE__PATH", str(tmp_path / "dncgate.sqlite3"))
    monkeypatch.setenv("DNCGATE_STORE__URL", redis_server.url)
    monkeypatch.setenv("DNCGATE_TENANTS__CN__REGION", "CN")
    monkeypatch.setenv("DNCGATE_TENANTS__US__REGION", "US")
    return kind


def ids(out: str) -> list[int]:
    return [int(json.loads(line)["decision_id"], 16) for line in out.splitlines()]


@pytest.mark.parametrize(("filters", "expected"), [
    ([], [1, 2, 3, 4, 5]),
    (["--tenant", "cn"], [1, 2, 4]),
    (["--reason", "national_dnc"], [1, 4]),
    # Any dialled form, read through each record's tenant's dial plan as the call was.
    (["--number", "13800138000"], [1, 2, 4]),
    (["--number", "0086 138-0013-8000"], [1, 2, 4]),
    (["--number", "+8613800138000", "--reason", "national_dnc"], [1, 4]),
    (["--number", "(201) 555-0123"], [3]),
    (["--number", "1-800-NOT-A"], [5]),  # not a number: found by what was dialled
    (["--since", "2026-12-01"], [2, 3, 4, 5]),  # a date: its start, UTC
    (["--until", "2026-12-01T08:00:00+08:00"], [1]),  # before, exclusive; any offset
    (["--since", "2026-12-01T00:00:00Z", "--until", "2026-12-02T08:00:00Z"], [2, 3]),
    (["--tenant", "us", "--since", "2026-12-02T00:00:00+00:00"], [5]),
])
def test_export_and_tail_filter_alike(audit_env: str, capsys: pytest.CaptureFixture[str],
                                      filters: list[str], expected: list[int]) -> None:
    code, out, err = run_cli(capsys, "audit", "export", "--json", *filters)
    assert (code, ids(out)) == (0, expected), err
    assert f"exported {len(expected)} records" in err
    code, out, _ = run_cli(capsys, "audit", "tail", "--json", "-n", "2", *filters)
    assert (code, ids(out)) == (0, expected[-2:])


def test_json_lines_have_the_record_keys(audit_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "audit", "tail", "--json", "-n", "5")
    assert code == 0
    keys = [list(json.loads(line)) for line in out.splitlines()]
    assert keys == [list(RECORD_KEYS)] * 5


def test_readable_lines_by_default(audit_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "audit", "tail", "-n", "2")
    assert code == 0
    first, second = out.splitlines()
    assert first.startswith("2026-12-02T08:00:00.000000+00:00  REJECT national_dnc ")
    assert "tenant=cn callee=+8613800138000 dialled='+86 138 0013 8000'" in first
    assert "REJECT invalid_number" in second
    assert "callee=- dialled='1-800-NOT-A'" in second


@pytest.mark.parametrize(("argv", "message"), [
    (["audit", "tail", "--since", "yesterday"], "'yesterday' is not an ISO 8601 time or date"),
    (["audit", "export", "--until", "2026-12-01T08:00:00"], "has no UTC offset"),
    (["audit", "export", "--reason", "because"], "argument --reason: invalid choice"),
])
def test_bad_filters_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, *argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_export_into_head_ends_quietly(tmp_path: Path, redis_server: RedisServer) -> None:
    """``dncgate audit export | head -n 1`` through a real pipe: no broken-pipe message, no traceback."""
    seed("sqlite", tmp_path, redis_server, [
        record(n, tenant="cn", dialled="13800138000", callee="+8613800138000", reason="national_dnc",
               at="2026-12-01T00:00:00.000000+00:00")
        for n in range(20_000)  # far more than a pipe's buffer
    ])
    env = {"PATH": "/usr/bin:/bin", "DNCGATE_STORE__PATH": str(tmp_path / "dncgate.sqlite3")}
    script = f"set -o pipefail; {DNCGATE} --log-level error audit export | head -n 1"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith("2026-12-01T00:00:00.000000+00:00  REJECT national_dnc")
    assert done.stderr == ""  # no "BrokenPipeError", no "exported N records" for an export cut short
    assert done.returncode == 141  # dncgate.cli.codes.BROKEN_PIPE, as pipefail reports it
