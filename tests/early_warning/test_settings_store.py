"""[early_warning] settings (defaults, overrides, every problem reported) and the SQLite store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dncgate.early_warning.alerts import Alert, OriginatorKey, OriginatorKind, Severity
from dncgate.early_warning.analyser import Analyser, Watch
from dncgate.early_warning.rules import DEFAULT_RULES, Feature
from dncgate.errors import ConfigError
from dncgate.settings import load
from dncgate.settings.early_warning import watches
from dncgate.store.sqlite.early_warning import SqliteEarlyWarningStore


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dncgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_tenant_gets_the_default_rules() -> None:
    settings = load()
    assert not settings.early_warning.enabled
    watch = watches(settings.early_warning, settings.tenants)["default"]
    assert watch.rules == DEFAULT_RULES
    assert watch.key is OriginatorKind.ACCOUNT
    assert watch.night == (21 * 60, 8 * 60)


def test_a_tenant_changes_a_default_rule_adds_one_and_drops_one(tmp_path: Path) -> None:
    settings = load(write(tmp_path, """
[tenants.acme]
region = "US"
[early_warning.tenants.acme]
key = "trunk"
zone = "America/New_York"
night = "22:00-07:30"
[early_warning.tenants.acme.rules.short_calls]
warning = 0.6
report_only = true
[early_warning.tenants.acme.rules.surge]
enabled = false
[early_warning.tenants.acme.rules.weekend_volume]
feature = "attempts_per_min"
warning = 30
hours = "09:00-17:00"
weekdays = ["sat", "sun"]
"""))
    watch = watches(settings.early_warning, settings.tenants)["acme"]
    rules = {rule.name: rule for rule in watch.rules}
    assert rules["short_calls"].warning == 0.6
    assert rules["short_calls"].critical == 0.7  # kept from the default
    assert rules["short_calls"].report_only
    assert "surge" not in rules
    assert rules["weekend_volume"].feature is Feature.ATTEMPTS_PER_MIN
    assert rules["weekend_volume"].hours == (540, 1020)
    assert rules["weekend_volume"].weekdays == frozenset({5, 6})
    assert (watch.key, watch.zone, watch.night) == (OriginatorKind.TRUNK, "America/New_York", (1320, 450))


def test_every_problem_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, """
[early_warning]
checkpoint_interval_s = 0
[early_warning.tenants.nobody]
[early_warning.tenants.default]
zone = "Mars/Olympus"
[early_warning.tenants.default.rules.x]
warning = 3
"""))
    text = str(caught.value)
    assert "checkpoint_interval_s" in text
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, """
[early_warning.tenants.nobody]
[early_warning.tenants.default]
zone = "Mars/Olympus"
"""))
    text = str(caught.value)
    assert "early_warning.tenants.nobody: no tenant 'nobody'" in text
    assert "'Mars/Olympus' is not a time zone" in text
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, """
[early_warning.tenants.default.rules.x]
warning = 3
[early_warning.tenants.default.rules.short_calls]
critical = 0.1
[early_warning.tenants.default.rules.y]
feature = "no_such_thing"
warning = 1
[early_warning.tenants.default.rules.z]
feature = "asr"
hours = "25:00-26:00"
warning = 1
"""))
    text = str(caught.value)
    assert "rules.x: feature: required" in text
    assert "rules.short_calls: critical 0.1 is below warning 0.55" in text
    assert "rules.y: 'no_such_thing' is not a valid Feature" in text
    assert "rules.z: '25:00-26:00': not a time of day" in text


def test_the_shared_transport_needs_the_redis_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, """
[early_warning]
transport = "redis"
"""))
    assert "early_warning.transport: the streams are on the store's Redis" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, "[early_warning.stream]\npartitions = 0\n"))
    assert "early_warning.stream.partitions: must be between 1 and 1024" in str(caught.value)
    settings = load(write(tmp_path, """
[store]
backend = "redis"
[early_warning]
transport = "redis"
[early_warning.stream]
partitions = 4
lease_s = 30
"""))
    assert settings.early_warning.transport == "redis"
    assert (settings.early_warning.stream.partitions, settings.early_warning.stream.lease) == (4, 30.0)


def _alert(alert_id: str, at: datetime) -> Alert:
    return Alert(alert_id, OriginatorKey("acme", OriginatorKind.ACCOUNT, "acct"), "short_calls", Severity.CRITICAL,
                 at, "1h", {"short6_share": 0.9}, 0.7, sample_decisions=("d1",), sample_calls=("c1",))


async def test_alerts_are_kept_once_and_acknowledged_once(tmp_path: Path) -> None:
    store = SqliteEarlyWarningStore(tmp_path / "ew.sqlite3")
    try:
        first = _alert("ew-1", datetime(2026, 3, 3, 12, tzinfo=UTC))
        assert await store.add(first)
        assert not await store.add(first)  # raised again after a restart: one row
        await store.add(replace(first, alert_id="ew-2", raised_at=datetime(2026, 3, 3, 13, tzinfo=UTC)))
        listed = await store.alerts("acme")
        assert [(a.alert_id, by) for a, by in listed] == [("ew-2", ""), ("ew-1", "")]
        assert listed[1][0] == first
        assert await store.acknowledge("acme", "ew-1", "cli:ann") == (first, "cli:ann")
        assert await store.acknowledge("acme", "ew-1", "cli:bob") == (first, "cli:ann")
        assert await store.acknowledge("other", "ew-1", "cli:bob") is None
        assert await store.acknowledge("acme", "ew-9", "cli:bob") is None
        assert [a.alert_id for a, _ in await store.alerts("acme", unacknowledged=True)] == ["ew-2"]
        assert await store.alerts("other") == []
    finally:
        await store.close()


async def test_window_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ew.sqlite3"
    raised: list[Alert] = []
    before = Analyser({"acme": Watch("acme")}, on_alert=raised.append)
    start = int(datetime(2026, 3, 3, 12, tzinfo=UTC).timestamp())
    for i in range(30):
        before.attempt("acme", "acct", start + i * 10, 15550000000 + i, True, False, False, "+1555", f"d{i}")
    before.flush(start + 400)
    store = SqliteEarlyWarningStore(path)
    await store.save_windows((t, o, s.dump(), s.seen) for t, o, s in before.states())
    await store.close()
    after = Analyser({"acme": Watch("acme")})
    store = SqliteEarlyWarningStore(path)
    try:
        for tenant, originator, raw, _ in await store.windows():
            assert after.restore(tenant, originator, raw)
        assert await store.forget_windows(start + 10_000) == 1
        assert await store.windows() == []
    finally:
        await store.close()
    ((_, _, kept),) = list(after.states())
    ((_, _, was),) = list(before.states())
    assert kept.dump() == was.dump()
