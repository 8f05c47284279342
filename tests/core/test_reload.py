"""SIGHUP: serve re-reads its file; tenants and API keys change live, a bad file is refused and the
old settings kept, what cannot change live is reported as needing a restart."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from dncgate.api.keys import hash_key
from dncgate.audit import AuditSink
from dncgate.gate import CheckRequest, Gate
from dncgate.install import installed_command
from dncgate.metrics import GateMetrics
from dncgate.model import ListPolicy, Mode, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.reload import LiveTenants, needs_restart, reload
from dncgate.settings import Settings, load
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import TEST_STORE_DEADLINE, free_port
from tests.serve_log import prepare_store, serve_process

OLD_KEY, NEW_KEY = "dncg_reload-old-key-0123456789", "dncg_reload-new-key-9876543210"
NUMBER = "2015550123"  # a valid US number on no list


# A FastAGI request that names no tenant: the gate asks the channel (GET VARIABLE DNCGATE_TENANT)
# before it decides, so the session is in flight until the test answers.
HEADER = (
    "agi_network: yes\nagi_network_script: check?purpose=marketing\n"
    "agi_request: agi://127.0.0.1/check?purpose=marketing\nagi_channel: PJSIP/uac-1\n"
    f"agi_uniqueid: 1.1\nagi_callerid: 4001234567\nagi_extension: {NUMBER}\nagi_arg_1: {NUMBER}\n\n"
)


def config_text(http_port: int, *, policy: str, key: str, queue_size: int = 100_000, agi_port: int = 0) -> str:
    return f"""
[store]
path = "dncgate.sqlite3"
[agi]
enabled = {"true" if agi_port else "false"}
port = {agi_port}
[http]
host = "127.0.0.1"
port = {http_port}
[api]
enabled = true
[api.keys.crm]
tenant = "acme"
sha256 = "{hash_key(key)}"
[audit]
queue_size = {queue_size}
[tenants.acme]
region = "US"
policy = "{policy}"
[tenants.acme.hours]
enabled = false
"""


def _check(port: int, key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/check?number={NUMBER}&purpose=marketing",
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310  # http on loopback
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_sighup_applies_tenants_and_keys_and_refuses_a_bad_file(tmp_path: Path) -> None:
    port, agi_port = free_port(), free_port()
    config = tmp_path / "dncgate.toml"
    config.write_text(config_text(port, policy="opt-out", key=OLD_KEY, agi_port=agi_port), encoding="utf-8")
    prepare_store(str(installed_command()), config, tmp_path, ["+12015550100"])  # NUMBER not on it
    with serve_process([str(installed_command()), "--config", str(config), "serve"], tmp_path) as (proc, log):
        log.until("gate.started")
        status, body = _check(port, OLD_KEY)
        assert (status, body["verdict"]) == (200, "allow")

        with socket.create_connection(("127.0.0.1", agi_port), timeout=10) as call, call.makefile("rb") as replies:
            # a call in flight across the reload
            call.sendall(HEADER.encode())
            assert replies.readline() == b"GET VARIABLE DNCGATE_TENANT\n"

            # opt-in: a marketing call needs consent; the old key is gone, a new one takes its place
            config.write_text(config_text(port, policy="opt-in", key=NEW_KEY, queue_size=500, agi_port=agi_port),
                              encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            reloaded = log.until("config.reloaded")
            assert reloaded["applied"] == ["tenants", "api.keys"]
            assert log.until("config.reload.needs_restart")["tables"] == ["audit"]
            assert _check(port, OLD_KEY)[0] == 401
            status, body = _check(port, NEW_KEY)
            assert (status, body["verdict"], body["reason"]) == (200, "reject", "no_consent")
            # the call was not dropped: answered now, it is decided (on the tenant as it is now) and ends
            call.sendall(b"200 result=1 (acme)\n")
            verdict = replies.readline()
            assert verdict.startswith(b'EXEC MSet "DNCGATE_VERDICT=reject,DNCGATE_REASON=no_consent,'), verdict
            call.sendall(b"200 result=1\n")
            assert replies.read() == b""

        # a file that does not load: refused, each problem named, the running settings kept
        config.write_text(config_text(port, policy="sometimes", key=OLD_KEY, agi_port=agi_port) + "[nonsense]\n",
                          encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        refused = log.until("config.reload.refused")
        problems = " ".join(refused["problems"])
        assert "tenants.acme.policy" in problems
        assert "nonsense" in problems
        assert _check(port, OLD_KEY)[0] == 401
        status, body = _check(port, NEW_KEY)
        assert (status, body["verdict"]) == (200, "reject")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def _settings(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "dncgate.toml"
    path.write_text(text, encoding="utf-8")
    return load(path, environ={})


def test_reload_replaces_the_tenants_every_holder_shares(tmp_path: Path) -> None:
    running = _settings(tmp_path, config_text(9, policy="opt-out", key=OLD_KEY))
    tenants = LiveTenants(running.tenants)
    before = tenants["acme"]  # what a call in flight holds: its policy, looked up at its start
    keys: list[Settings] = []
    (tmp_path / "dncgate.toml").write_text(config_text(9, policy="opt-in", key=OLD_KEY), encoding="utf-8")
    result = reload(running, tenants, keys.append, environ={})
    assert result is not None
    assert (result.applied, result.needs_restart, keys) == (("tenants",), (), [])
    assert tenants["acme"].list_policy is ListPolicy.OPT_IN
    assert before.list_policy is ListPolicy.OPT_OUT
    assert result.settings.tenants is tenants


def test_reload_names_every_table_that_needs_a_restart(tmp_path: Path) -> None:
    running = _settings(tmp_path, config_text(9, policy="opt-out", key=OLD_KEY))
    changed = _settings(tmp_path, config_text(10, policy="opt-out", key=NEW_KEY, queue_size=5)
                        .replace('path = "dncgate.sqlite3"', 'path = "other.sqlite3"')
                        .replace("[api]\nenabled = true", "[api]\nenabled = false"))
    assert needs_restart(running, changed) == ("store", "http", "audit", "api")
    assert needs_restart(running, _settings(tmp_path, config_text(9, policy="opt-in", key=NEW_KEY))) == ()


def test_a_refused_reload_keeps_everything(tmp_path: Path) -> None:
    running = _settings(tmp_path, config_text(9, policy="opt-out", key=OLD_KEY))
    tenants = LiveTenants(running.tenants)
    (tmp_path / "dncgate.toml").write_text("[store]\nbackend = 3\n", encoding="utf-8")
    with structlog.testing.capture_logs() as logs:
        assert reload(running, tenants, pytest.fail, environ={}) is None
    assert [entry["event"] for entry in logs] == ["config.reload.refused"]
    assert len(logs[0]["problems"]) == 1
    assert "store.backend" in logs[0]["problems"][0]
    assert dict(tenants) == dict(running.tenants)


def test_a_new_tenant_name_is_applied_and_named_for_what_started_per_tenant(tmp_path: Path) -> None:
    text = config_text(9, policy="opt-out", key=OLD_KEY) + "[enforcement]\nenabled = true\n"
    running = _settings(tmp_path, text)
    tenants = LiveTenants(running.tenants)
    (tmp_path / "dncgate.toml").write_text(text + '[tenants.globex]\nregion = "GB"\n', encoding="utf-8")
    result = reload(running, tenants, pytest.fail, environ={})
    assert result is not None
    assert sorted(tenants) == ["acme", "globex"]
    assert result.needs_restart == ("enforcement (its tenant names)",)


async def test_a_call_decided_across_a_reload_keeps_its_tenants_metrics_label(tmp_path: Path) -> None:
    store = SqliteListStore(tmp_path / "gate.sqlite3")
    audit = AuditSink(store)
    audit.start()
    metrics = GateMetrics()
    tenants = LiveTenants({"acme": TenantPolicy("acme", DialPlan(region="US"))})
    gate = Gate(tenants, store, audit, metrics=metrics, store_deadline=TEST_STORE_DEADLINE)
    finishing: list[Callable[[], None]] = []
    try:
        result = await gate.check(CheckRequest(NUMBER, "agi", tenant="acme", purpose="service"),
                                  structlog.get_logger("test"), defer=finishing.append)
        tenants.replace({"acme": TenantPolicy("acme", DialPlan(region="US"), mode=Mode.MONITOR)})  # SIGHUP
        (finish,) = finishing
        finish()  # the call's log line and metrics, after its verdict went out
    finally:
        await audit.close()
        await store.close()
    assert result.attempt.tenant.mode is Mode.ENFORCE  # decided on the policy it started with
    assert metrics.registry.get_sample_value(
        "dncgate_decisions_total", {"tenant": "acme", "door": "agi", "verdict": "allow", "outcome": "allow",
                                    "reason": "allowed_service"}) == 1


def test_a_reload_under_demo_applies_the_demo_overrides_again(tmp_path: Path) -> None:
    """serve --demo: SIGHUP re-reads the demo's file; with the demo's overrides applied again, no table
    is reported as needing a restart (without them: the store, enforcement and the console would be)."""
    from dncgate.cli.serve import demo_config, demo_settings

    db = tmp_path / "demo.sqlite3"
    running = demo_settings(load(demo_config(), {}), db)
    tenants = LiveTenants(running.tenants)
    with structlog.testing.capture_logs() as logs:
        result = reload(running, tenants, pytest.fail, environ={},
                        overrides=lambda read: demo_settings(read, db))
    assert result is not None
    assert (result.applied, result.needs_restart) == ((), ())
    assert "config.reload.needs_restart" not in [entry["event"] for entry in logs]
    assert result.settings.store.path == db.absolute()
    assert needs_restart(running, load(demo_config(), {})) == ("store", "enforcement", "console")
