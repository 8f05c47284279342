"""A list a tenant needs with no live version fails closed (issue 11 item 2).

A Redis restarted without its data (no persistence, a failover replica, FLUSHALL) or a new SQLite
file holds no national list: a listed callee must then be refused (``list_missing``, the tenant's
``marketing_on_failure``), not reached as ``allowed_clear``, whatever ``stale_action`` says;
``/healthz`` answers 503 with the reason, and the age metric is never NaN.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dncgate.lists.freshness import ListFreshness
from dncgate.lists.sync_metrics import SyncMetrics
from dncgate.model import TenantPolicy
from dncgate.settings import ConfigError, load
from dncgate.store.sqlite import SqliteListStore
from tests.agi.test_check import fake_asterisk, mset
from tests.conftest import RedisServer, redis_test_settings, serving

LISTED = 12015550123  # US, on the national list
CLEAR = "2015550124"


def _tenants() -> dict[str, TenantPolicy]:
    return {"acme": TenantPolicy("acme"), "own": TenantPolicy("own", required_lists=("tenant:own",))}


def _config(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "dncgate.toml"
    path.write_text(f"""
[store]
backend = "redis"
url = "{redis_url}"
[audit]
spool_dir = "{tmp_path / 'spool'}"
[agi]
port = 0
[http]
port = 0
[tenants.acme]
region = "US"
[tenants.acme.hours]
enabled = false
""")
    return path


async def _healthz(port: int) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as reply:
        return reply.status, await reply.json()


async def _agi(port: int, number: str) -> dict[str, str]:
    return mset(await fake_asterisk(port, "agi://127.0.0.1/check?tenant=acme&purpose=marketing", [number]))


async def test_redis_flushed_under_a_running_gate_refuses_the_next_listed_call(
    tmp_path: Path, redis_server: RedisServer,
) -> None:
    from dncgate.store.redis import RedisListStore

    redis_server.flush()
    loader = await RedisListStore.connect(redis_test_settings(redis_server.url))
    try:
        await loader.replace_list("national", [LISTED])
    finally:
        await loader.close()
    async with serving(load(_config(tmp_path, redis_server.url), environ={})) as running:
        assert running.agi_port is not None
        assert running.http_port is not None
        listed = await _agi(running.agi_port, str(LISTED)[1:])
        assert (listed["DNCGATE_VERDICT"], listed["DNCGATE_REASON"]) == ("reject", "national_dnc")
        assert (await _healthz(running.http_port))[0] == 200

        redis_server.flush()  # FLUSHALL on the real redis-server the gate uses: every list gone

        for number in (str(LISTED)[1:], f"+{LISTED}", CLEAR):  # the listed callee in two forms, a clear one
            values = await _agi(running.agi_port, number)
            assert (values["DNCGATE_VERDICT"], values["DNCGATE_REASON"], values["DNCGATE_SIPCODE"]) == (
                "reject", "list_missing", "603"), number
            assert values["DNCGATE_ANNOUNCEMENT"] == ""  # the callee declined nothing
        service = mset(await fake_asterisk(running.agi_port, "agi://127.0.0.1/check?tenant=acme&purpose=service",
                                           [str(LISTED)[1:]]))
        assert (service["DNCGATE_VERDICT"], service["DNCGATE_REASON"]) == ("allow", "allowed_service")
        status, body = await _healthz(running.http_port)
        assert (status, body["status"], body["store"], body["lists"]) == (503, "degraded", "ok", "missing")
        assert body["error"] == "no live version of national (needed by acme)"
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{running.http_port}/metrics") as r:
            text = await r.text()
        assert 'dncgate_list_missing{list="national"} 1.0' in text
        assert "NaN" not in text
        assert "dncgate_list_age_seconds{" not in text  # unknown: absent, not NaN


async def test_freshness_says_which_needed_list_is_missing_and_for_whom(tmp_path: Path) -> None:
    store = SqliteListStore(tmp_path / "g.sqlite3")
    try:
        freshness = ListFreshness(store, _tenants())
        assert freshness.missing_reason().startswith("lists not read from the store yet")  # not ready until read
        assert await freshness.read_missing() == (
            "no live version of national (needed by acme); tenant:own (needed by own)")
        await store.replace_list("national", [LISTED])
        assert await freshness.read_missing() == "no live version of tenant:own (needed by own)"
        await store.replace_list("tenant:own", [])  # loaded empty on purpose: a live version
        assert await freshness.read_missing() == ""
    finally:
        await store.close()


async def test_the_lists_needed_follow_a_reload_of_the_tenants(tmp_path: Path) -> None:
    from dncgate.reload import LiveTenants

    store = SqliteListStore(tmp_path / "g.sqlite3")
    tenants = LiveTenants({"acme": TenantPolicy("acme")})
    try:
        freshness = ListFreshness(store, tenants)
        assert await freshness.read_missing() == "no live version of national (needed by acme)"
        tenants.replace({"acme": TenantPolicy("acme", required_lists=())})  # what SIGHUP does
        assert await freshness.read_missing() == ""
        tenants.replace(_tenants())
        assert await freshness.read_missing() == (
            "no live version of national (needed by acme); tenant:own (needed by own)")
    finally:
        await store.close()


async def test_the_age_metric_is_absent_while_unknown_and_the_missing_gauge_follows_the_store(
    tmp_path: Path,
) -> None:
    store = SqliteListStore(tmp_path / "g.sqlite3")
    registry = CollectorRegistry()
    try:
        freshness = ListFreshness(store, _tenants())
        SyncMetrics(registry).watch(freshness)
        await freshness.refresh()
        before = generate_latest(registry).decode()
        assert "NaN" not in before
        assert "dncgate_list_age_seconds{" not in before
        assert 'dncgate_list_missing{list="national"} 1.0' in before
        assert 'dncgate_list_missing{list="tenant:own"} 1.0' in before
        await store.replace_list("national", [LISTED])
        await freshness.refresh()
        after = generate_latest(registry).decode()
        assert 'dncgate_list_missing{list="national"} 0.0' in after
        assert 'dncgate_list_missing{list="tenant:own"} 1.0' in after
        assert 'dncgate_list_age_seconds{list="national"}' in after
    finally:
        await store.close()


@pytest.mark.parametrize(("value", "problem"), [
    ('["tenant:other"]', "'tenant:other': a tenant needs 'national' or its own 'tenant:acme'"),
    ('["national", "national"]', "lists repeat"),
])
def test_required_lists_name_the_national_list_or_the_tenants_own(tmp_path: Path, value: str, problem: str) -> None:
    path = tmp_path / "dncgate.toml"
    path.write_text(f"[tenants.acme]\nrequired_lists = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    assert any(line.endswith(f"tenants.acme.required_lists: {problem}") for line in raised.value.problems), (
        raised.value.problems)


def test_a_tenant_says_it_uses_only_its_own_list(tmp_path: Path) -> None:
    path = tmp_path / "dncgate.toml"
    path.write_text('[tenants.acme]\nrequired_lists = ["tenant:acme"]\n[tenants.open]\nrequired_lists = []\n')
    tenants = load(path, environ={}).tenants
    assert (tenants["acme"].required_lists, tenants["open"].required_lists) == (("tenant:acme",), ())
    assert load(None, environ={}).tenants["default"].required_lists == ("national",)
