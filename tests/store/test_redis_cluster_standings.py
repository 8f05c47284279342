"""A carrier's standings on a Redis Cluster: a case store's scripts (append, apply, read) keep to the
tenant's one slot ({e:TENANT}), so a reseller on a cluster takes them as on one Redis."""

from __future__ import annotations

from dncgate.enforcement.feed_standings import FeedStandings
from dncgate.store.redis.cases import RedisCaseStore
from tests.enforcement.conftest import own_restriction
from tests.store.cluster_lab import RedisClusterLab
from tests.store.conftest import open_cluster_store

NUMBER, OWN = 8613800138000, "account:acme-out"


async def test_a_reseller_on_a_cluster_applies_its_carriers_standings(redis_cluster: RedisClusterLab) -> None:
    lists = await open_cluster_store(redis_cluster)  # flushes the cluster
    cases = RedisCaseStore.connect(redis_cluster.url, timeout=5.0, cluster=True)
    try:
        service, _, own = await own_restriction(cases, OWN)
        applied = await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 3, {OWN: "s"}))
        assert (applied.added, applied.refused) == (1, "")
        assert (await lists.facts("acme", NUMBER, originators=(OWN,))).originator_suspended
        lifted = await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 4, {}))
        assert lifted.kept_local == 1
        facts = await lists.facts("acme", NUMBER, originators=(OWN,))
        assert (facts.originator_suspended, facts.originator_restriction) == (False, own)
        served = await cases.standings("acme")
        assert served.standings == {OWN: "r:5:0"}
        assert (await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 2, {}))).refused
        await service.drain()
    finally:
        await cases.close()
        await lists.close()
