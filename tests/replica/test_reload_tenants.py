"""A tenant a reload adds (SIGHUP) is followed by the replica from its next poll; one it removes is
dropped. Until its list and index are loaded its calls take the round trip, never an empty copy."""

from __future__ import annotations

from pathlib import Path

from dncgate.consent.model import Action
from dncgate.model import TenantPolicy
from dncgate.reload import LiveTenants
from dncgate.replica.follow import RedisFollower
from dncgate.replica.store import ReplicaStore
from dncgate.settings import ConsentSettings, ReplicaSettings
from dncgate.store.redis import RedisListStore, RedisSettings
from dncgate.store.redis.ledger import RedisLedger
from tests.conftest import RedisServer
from tests.consent.conftest import event
from tests.replica.test_replica_store import Clock

BETA = [12015550200 + i * 13 for i in range(400)]


async def test_a_tenant_added_by_a_reload_is_followed_and_a_removed_one_dropped(
        redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.flush()
    store = await RedisListStore.connect(RedisSettings(url=redis_server.url, socket_timeout=2, connect_timeout=2))
    ledger = RedisLedger.connect(redis_server.url, ConsentSettings(), timeout=2)
    await store.replace_list("national", [12015550100])
    await store.replace_list("tenant:acme", [12015550101])
    await store.replace_list("tenant:beta", BETA)
    await ledger.append(event(Action.DECLINE, "+12015550999", tenant="beta", categories=("*",)))
    tenants = LiveTenants({"acme": TenantPolicy("acme")})
    settings = ReplicaSettings(enabled=True, dir=tmp_path / "replica", max_lag_ms=200, poll_ms=20)
    follower = RedisFollower(redis_server.url, settings, tenants, clock=Clock(), timeout=2)
    replica = ReplicaStore(store, follower, settings, round_trip_deadline=1.0)
    try:
        follower.start()
        await follower.wait_ready()
        assert replica.local_facts("beta", BETA[7]) is None  # not followed: the round trip decides

        tenants.replace({"acme": TenantPolicy("acme"), "beta": TenantPolicy("beta")})
        await follower.poll_once()
        local = replica.local_facts("beta", BETA[7])
        assert local is not None
        assert local.tenant_list is not None
        assert local == await store.facts("beta", BETA[7])
        clear = replica.local_facts("beta", 12015559990)
        assert clear is not None
        assert clear.tenant_list is None
        assert replica.local_facts("beta", 12015550999) is None  # has a ledger record: read fresh
        assert replica.local_facts("acme", 12015550101) is not None

        tenants.replace({"beta": TenantPolicy("beta")})
        await follower.poll_once()
        assert "acme" not in follower.tenants
        assert "tenant:acme" not in follower.lists
        assert replica.local_facts("acme", 12015550101) is None
        assert replica.local_facts("beta", BETA[7]) is not None
    finally:
        await replica.close()
        await ledger.close()
        await store.close()
