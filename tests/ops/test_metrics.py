"""/metrics of a running gate: process and build series, doors, store errors, audit backlog, list
sizes after a load by another process; and the shipped alert rules and dashboard name only series
a running gate exports."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest
import structlog
from prometheus_client import CollectorRegistry, generate_latest

from dncgate.audit import AuditSink
from dncgate.gate import CheckRequest, Gate
from dncgate.install import shared
from dncgate.lists.freshness import ListFreshness
from dncgate.lists.sync_metrics import SyncMetrics
from dncgate.metrics import GateMetrics
from dncgate.model import Reason, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.settings import load
from dncgate.store.errors import StoreUnavailable
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import TEST_STORE_DEADLINE, run_cli, serving

RULES = shared("prometheus", "dncgate-alerts.yml")
DASHBOARD = shared("grafana", "dncgate.json")
# Series of Prometheus itself, not of the gate
NOT_EXPORTED = {"up"}


def _config(tmp_path: Path, agi: str = "") -> Path:
    path = tmp_path / "dncgate.toml"
    path.write_text(f"""
[store]
path = "{tmp_path / 'gate.sqlite3'}"
[agi]
port = 0
{agi}
[esl]
enabled = true
port = 0
[http]
port = 0
""")
    return path


async def _scrape(port: int) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as reply:
        assert reply.status == 200
        return await reply.text()


def exported_names(text: str) -> set[str]:
    """Every series name an exposition offers: sample names, and those its TYPE lines promise
    (a labelled counter shows no sample until its first increment)."""
    names = {line.split("{")[0].split()[0] for line in text.splitlines() if line and not line.startswith("#")}
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):  # a counter's has its _total
        names |= {name + suffix for suffix in suffixes.get(kind, ("",))}
    return names


def _sample(text: str, series: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.split()[-1])


async def test_a_running_gate_exports_process_build_door_and_audit_series(tmp_path: Path) -> None:
    async with serving(load(_config(tmp_path, agi="max_sessions = 1"))) as running:
        assert running.agi_port is not None
        assert running.http_port is not None
        _, held = await asyncio.open_connection("127.0.0.1", running.agi_port)  # the one session allowed
        reader, extra = await asyncio.open_connection("127.0.0.1", running.agi_port)
        assert await reader.read() == b""  # refused: closed by the gate, so it has counted both
        text = await _scrape(running.http_port)
        held.close()
        extra.close()
    assert "_created" not in text
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "python_info"):
        assert name in exported_names(text)
    assert re.search(r'^dncgate_build_info\{python="3\.\d+\.\d+",version="\d[^"]*"\} 1\.0$', text, re.MULTILINE)
    assert _sample(text, 'dncgate_door_up{door="agi"}') == 1
    assert _sample(text, 'dncgate_door_up{door="esl"}') == 1
    assert _sample(text, 'dncgate_door_sessions{door="agi"}') == 1
    assert _sample(text, 'dncgate_door_sessions{door="esl"}') == 0
    assert _sample(text, 'dncgate_door_accepted_total{door="agi"}') == 1
    assert _sample(text, 'dncgate_door_refused_total{door="agi",reason="max_sessions"}') == 1
    assert _sample(text, "dncgate_audit_backlog") == 0
    assert _sample(text, 'dncgate_store_errors_total{op="facts"}') == 0


class _FailingStore(SqliteListStore):
    async def facts(  # type: ignore[override]
        self, tenant: str, number: int, *, entity: str = "", originators: Sequence[str] = ()
    ) -> object:
        raise StoreUnavailable("the store is down (test)")


async def test_store_errors_on_the_check_path_are_counted_and_the_audit_backlog_shows(tmp_path: Path) -> None:
    store = _FailingStore(tmp_path / "s.sqlite3")
    audit = AuditSink(store)  # not started: what the gate submits stays queued
    metrics = GateMetrics()
    metrics.watch_audit(audit)
    gate = Gate({"default": TenantPolicy("default", dial_plan=DialPlan(region="US"))}, store, audit,
                    store_deadline=TEST_STORE_DEADLINE, metrics=metrics)
    try:
        for _ in range(3):
            result = await gate.check(CheckRequest("+12015550123", "cli"), structlog.get_logger("test"))
            assert result.decision.reason is Reason.CHECK_FAILED
        await asyncio.sleep(0)  # the gate records a decision on the loop's next turn
        text = metrics.render().decode()
    finally:
        await store.close()
    assert _sample(text, 'dncgate_store_errors_total{op="facts"}') == 3
    assert _sample(text, "dncgate_audit_backlog") == 3
    assert _sample(text, "dncgate_audit_unwritten_total") == 0


def test_list_numbers_follow_a_load_made_by_another_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "gate.sqlite3"
    registry = CollectorRegistry()
    sync_metrics = SyncMetrics(registry)
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("+12015550123\n+12015550124\n+12015550125\n")
    monkeypatch.setenv("DNCGATE_STORE__PATH", str(db))
    monkeypatch.delenv("DNCGATE_CONFIG", raising=False)

    async def refresh() -> None:  # what serve's refresher does every few seconds, on its own store
        store = SqliteListStore(db)
        try:
            freshness = ListFreshness(store, {})
            sync_metrics.watch(freshness)
            await freshness.refresh()
        finally:
            await store.close()

    asyncio.run(refresh())
    assert "dncgate_list_numbers{" not in generate_latest(registry).decode()
    code, _, err = run_cli(capsys, "lists", "load", "--list", "national", str(numbers))  # the CLI's own store
    assert code == 0, err
    asyncio.run(refresh())
    assert 'dncgate_list_numbers{list="national"} 3.0' in generate_latest(registry).decode()


def _rule_exprs() -> list[str]:
    import yaml

    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            found.extend(v for k, v in node.items() if k in ("expr", "query") and isinstance(v, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    return found


def _series_named(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in re.findall(r"\b((?:dncgate|process|python)_[a-z0-9_]+|up)\b", expr)}


async def test_every_series_the_alerts_and_the_dashboard_use_is_exported(tmp_path: Path) -> None:
    async with serving(load(_config(tmp_path))) as running:
        assert running.http_port is not None
        exported = exported_names(await _scrape(running.http_port))
    used = _series_named(_rule_exprs()) | _series_named(_dashboard_exprs())
    assert len(used) > 15
    assert sorted(used - exported - NOT_EXPORTED) == []


def test_the_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run scripts/install-test-deps.sh (Debian package prometheus)")
    with __import__("importlib").resources.as_file(RULES) as rules:
        proc = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60,
                              check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rule_exprs())} rules found" in proc.stdout
