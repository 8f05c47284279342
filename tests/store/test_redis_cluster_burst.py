"""A burst beyond ``max_connections`` on a Redis Cluster waits for a connection instead of failing.

redis-py's cluster client raises ``MaxConnectionsError`` at once when a node's pool is used up (its
pool does not block as ``BlockingConnectionPool`` does for one server): 200 concurrent ledger
appends with ``max_connections = 4`` failed 182 of them. ``conn.CommandPermits`` makes them wait."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from dncgate.consent.model import Action
from dncgate.settings import ConsentSettings
from dncgate.store.errors import StoreUnavailable
from dncgate.store.redis import audit as audit_log
from dncgate.store.redis.conn import GatedCluster, RedisSettings, bounded, close_client, make_client
from dncgate.store.redis.keys import AUDIT
from dncgate.store.redis.ledger import RedisLedger
from tests.consent.conftest import event
from tests.store.cluster_lab import RedisClusterLab
from tests.store.test_contract import _record

BURST = 200


def _settings(lab: RedisClusterLab, **overrides: object) -> RedisSettings:
    base = RedisSettings(url=lab.url, cluster=True, socket_timeout=5.0, connect_timeout=5.0,
                         max_connections=4, pool_timeout=60.0)
    return replace(base, **overrides)  # type: ignore[arg-type]


async def test_a_burst_of_ledger_appends_waits_for_connections(redis_cluster: RedisClusterLab) -> None:
    redis_cluster.flush()
    ledger = RedisLedger(make_client(_settings(redis_cluster)), ConsentSettings(), deadline=120.0)
    try:
        tenants = [f"t{n}" for n in range(10)]  # their ledgers' slots are on every master
        appended = await asyncio.gather(*(
            ledger.append(event(Action.GRANT, f"+1201555{1000 + i}", tenant=tenants[i % len(tenants)]))
            for i in range(BURST)
        ))
        for tenant in tenants:
            seqs = sorted(e.seq for e in appended if e.tenant == tenant)
            assert seqs == list(range(1, BURST // len(tenants) + 1))  # every acknowledged append has its place
            assert [e.seq async for e in ledger.history(tenant)] == seqs  # and is in Redis
    finally:
        await ledger.close()


async def test_a_burst_of_audit_appends_and_commands_waits(redis_cluster: RedisClusterLab) -> None:
    redis_cluster.flush()
    client = make_client(_settings(redis_cluster))
    try:
        await asyncio.gather(*(audit_log.append(client, [_record(i % 60)], 1000) for i in range(BURST)))
        await asyncio.gather(*(client.set(f"burst:{i}", i) for i in range(BURST)))  # keys on every master
        assert await client.xlen(AUDIT) == 60  # the replayed decision ids were deduplicated, none lost
        assert [int(v) for v in await asyncio.gather(*(client.get(f"burst:{i}") for i in range(BURST)))] == list(
            range(BURST))
    finally:
        await close_client(client)


async def test_a_command_that_finds_no_free_connection_in_time_is_a_store_error(
    redis_cluster: RedisClusterLab,
) -> None:
    redis_cluster.flush()
    client = make_client(_settings(redis_cluster, max_connections=1, pool_timeout=0.05))
    assert isinstance(client, GatedCluster)
    holder_in, holder_out = asyncio.Event(), asyncio.Event()

    async def hold_the_only_connection() -> None:
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch("held")  # a transaction's connection is held from WATCH until reset
            holder_in.set()
            await holder_out.wait()

    holder = asyncio.create_task(hold_the_only_connection())
    try:
        await holder_in.wait()
        with pytest.raises(StoreUnavailable, match="connections busy"):
            await bounded("get", 30.0, client.get("other"))
        holder_out.set()
        await holder
        assert await bounded("get", 30.0, client.get("other")) is None  # the permit came back
        assert client.permits.permits == 1
    finally:
        holder_out.set()
        await holder
        await close_client(client)
