"""The Redis store on a real Redis Cluster (issue 14 item 6): the consent ledger, the gate's decisions
(the same as on one Redis), the settings a cluster refuses, and a master killed mid-load.
The list store's contract runs on the cluster too (``store`` fixture, ``redis-cluster``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog

from dncgate.app import App, open_app
from dncgate.consent.model import Action
from dncgate.gate import CheckRequest
from dncgate.model import Originator, Verdict
from dncgate.settings import ConfigError, ConsentSettings, Settings, load
from dncgate.store.redis.keys import ListKeys
from dncgate.store.redis.ledger import RedisLedger
from tests.conftest import RedisServer
from tests.consent.conftest import event
from tests.store.cluster_lab import POLL, POLLS, RedisClusterLab, cluster_lab

log = structlog.get_logger("test")
LISTED = [12015551000 + i for i in range(50)]
TENANT_LISTED = [12015552000 + i for i in range(10)]
CONSENTED = LISTED[:5]


def _settings(url: str, *, cluster: bool) -> Settings:
    return load(None, environ={
        "DNCGATE_STORE__BACKEND": "redis", "DNCGATE_STORE__URL": url, "DNCGATE_STORE__TIMEOUT_MS": "1000",
        "DNCGATE_STORE__CLUSTER": str(cluster).lower(),
        "DNCGATE_TENANTS__ACME__REGION": "US", "DNCGATE_TENANTS__ACME__HOURS__ENABLED": "false",
        "DNCGATE_AUDIT__SPOOL_DIR": "",
    })


async def _verdict(app: App, number: int) -> Verdict:
    request = CheckRequest(f"+{number}", door="test", tenant="acme", purpose="marketing",
                           originator=Originator(account="a1", entity="bank-1"))
    return (await app.gate.check(request, log)).decision.verdict


async def _fill(app: App) -> None:
    await app.store.replace_list("national", LISTED)
    await app.store.replace_list("tenant:acme", TENANT_LISTED)
    await app.store.add_numbers("national", [12015553000])
    await app.store.set_prefix_rule("tenant:acme", "1201555999")
    for number in CONSENTED:
        await app.consent_ledger().append(event(Action.GRANT, f"+{number}", tenant="acme"))


async def _decisions(url: str, *, cluster: bool) -> list[Verdict]:
    async with open_app(_settings(url, cluster=cluster), ledger=True) as app:
        await _fill(app)
        numbers = [*LISTED, *TENANT_LISTED, 12015553000, 12015559990, 12015554000]
        return [await _verdict(app, number) for number in numbers]


async def test_gate_decides_the_same_on_a_cluster_as_on_one_redis(
    redis_cluster: RedisClusterLab, redis_server: RedisServer,
) -> None:
    redis_cluster.flush()
    redis_server.flush()
    on_cluster = await _decisions(redis_cluster.url, cluster=True)
    on_one = await _decisions(redis_server.url, cluster=False)
    assert on_cluster == on_one
    assert on_cluster.count(Verdict.ALLOW) == len(CONSENTED) + 1  # consented, and the unlisted number
    assert Verdict.REJECT in on_cluster


async def test_consent_ledger_appends_and_reads_on_a_cluster(redis_cluster: RedisClusterLab) -> None:
    redis_cluster.flush()
    ledger = RedisLedger.connect(redis_cluster.url, ConsentSettings(), timeout=5.0, cluster=True)
    try:
        for tenant in ("acme", "beta", "gamma"):  # tenants' tags land on different masters
            await ledger.append(event(Action.GRANT, "+12015551000", tenant=tenant))
            await ledger.append(event(Action.DECLINE, "+12015551000", tenant=tenant, categories=("*",)))
        for tenant in ("acme", "beta", "gamma"):
            assert set(await ledger.consents(tenant, 12015551000)) == {"bank-1"}
            assert (await ledger.preferences(tenant, 12015551000)).declined == frozenset({"*"})
            assert [e.seq async for e in ledger.history(tenant)] == [1, 2]
            assert (await ledger.head(tenant)).seq == 2
    finally:
        await ledger.close()


def test_a_cluster_refuses_the_replica_and_sqlite() -> None:
    base = {"DNCGATE_STORE__CLUSTER": "true", "DNCGATE_STORE__URL": "redis://127.0.0.1:7000/0"}
    with pytest.raises(ConfigError, match=r"replica.*does not follow a Redis Cluster"):
        load(None, environ={**base, "DNCGATE_STORE__BACKEND": "redis", "DNCGATE_REPLICA__ENABLED": "true"})
    with pytest.raises(ConfigError, match="a cluster is a Redis Cluster"):
        load(None, environ=base)
    with pytest.raises(ConfigError, match="only database 0"):
        load(None, environ={**base, "DNCGATE_STORE__BACKEND": "redis", "DNCGATE_STORE__URL": "redis://h:1/3"})
    with pytest.raises(ConfigError, match="fact streams need one Redis server"):
        load(None, environ={**base, "DNCGATE_STORE__BACKEND": "redis", "DNCGATE_EARLY_WARNING__TRANSPORT": "redis"})


async def test_a_master_killed_mid_load_fails_closed_then_recovers(tmp_path: Path) -> None:
    lab = cluster_lab(tmp_path / "cluster")
    try:
        await _failover(lab)
    finally:
        lab.stop()


async def _failover(lab: RedisClusterLab) -> None:
    async with open_app(_settings(lab.url, cluster=True), ledger=True) as app:
        await _fill(app)
        master = lab.master_of(ListKeys.of("national").pointer)
        lab.replicated(master)
        expected = {number: await _verdict(app, number) for number in (*LISTED[:20], 12015554000)}
        assert Verdict.ALLOW in expected.values()
        assert Verdict.REJECT in expected.values()
        stop = asyncio.Event()
        counts = {"right": 0, "failed_closed": 0, "wrong_allow": 0, "other": 0}

        async def keep_checking() -> None:
            while not stop.is_set():
                for number, verdict in expected.items():
                    got = await _verdict(app, number)
                    if got is verdict:
                        counts["right"] += 1
                    elif got is Verdict.ALLOW:
                        counts["wrong_allow"] += 1
                    elif got is Verdict.REJECT:  # check_failed on a marketing call: rejected
                        counts["failed_closed"] += 1
                    else:
                        counts["other"] += 1
                await asyncio.sleep(0)

        checker = asyncio.create_task(keep_checking())
        await asyncio.sleep(POLL)
        killed_at = asyncio.get_running_loop().time()
        lab.kill(master)
        await asyncio.to_thread(lab.wait_ok, lab.survivors(), master.port)
        right_again = 0
        for _ in range(POLLS):  # the first lookups after the promotion may still hit the old table
            if all([await _verdict(app, n) is v for n, v in expected.items()]):
                right_again += 1
                if right_again == 3:
                    break
            await asyncio.sleep(POLL)
        stop.set()
        await checker
        recovered_s = round(asyncio.get_running_loop().time() - killed_at, 2)  # logged for the README only
        log.info("test.cluster_failover", recovered_s=recovered_s, **counts)
        assert counts["wrong_allow"] == 0
        assert counts["other"] == 0
        assert right_again == 3
        assert counts["failed_closed"] > 0  # the killed master's lookups failed, closed
