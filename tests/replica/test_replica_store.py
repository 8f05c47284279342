"""The replica on a real Redis (issue 14 items 1 and 3): the same Facts as the store for every number
without records, after loads, edits, rule changes, a swap and ledger writes; numbers with records
and stale replicas take the round trip; with the store down it decides from the replica for at most
replica_max_age_s, logged and counted, then fails closed. Ages come from an injected clock."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from redis.asyncio import Redis

from dncgate.consent.model import Action
from dncgate.replica.follow import RedisFollower
from dncgate.replica.settle import SettlingLedger
from dncgate.replica.store import ReplicaStore
from dncgate.settings import ConsentSettings, ReplicaSettings
from dncgate.store.errors import StoreUnavailable
from dncgate.store.redis import RedisListStore, RedisSettings
from dncgate.store.redis.ledger import RedisLedger
from tests.conftest import RedisServer, free_port
from tests.consent.conftest import event

NATIONAL = [12015550100 + i * 7 for i in range(2000)] + [447700900000 + i for i in range(500)]
TENANT = [12015550101 + i * 11 for i in range(300)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    url: str
    store: RedisListStore
    replica: ReplicaStore
    follower: RedisFollower
    ledger: RedisLedger
    clock: Clock


async def _rig(url: str, tmp_path: Path, clock: Clock, **replica: int) -> Rig:
    store = await RedisListStore.connect(RedisSettings(url=url, socket_timeout=0.5, connect_timeout=0.5))
    await store.replace_list("national", NATIONAL)
    await store.replace_list("tenant:acme", TENANT)
    await store.set_prefix_rule("national", "8613")
    await store.set_prefix_rule("tenant:acme", "861380")
    ledger = RedisLedger.connect(url, ConsentSettings(), timeout=0.5)
    await ledger.append(event(Action.DECLINE, "+12015550100", categories=("*",)))
    settings = ReplicaSettings(enabled=True, dir=tmp_path / "replica", max_lag_ms=200, poll_ms=20,
                               **replica)  # type: ignore[arg-type]
    follower = RedisFollower(url, settings, ["acme"], clock=clock, timeout=0.5)
    follower.start()
    await follower.wait_ready()
    return Rig(url, store, ReplicaStore(store, follower, settings, round_trip_deadline=0.3), follower, ledger, clock)


@pytest.fixture
async def rig(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Rig]:
    redis_server.flush()
    made = await _rig(redis_server.url, tmp_path, Clock())
    yield made
    await made.replica.close()
    await made.ledger.close()
    await made.store.close()


def _probes() -> list[int]:
    rng = random.Random(14)
    near = [n + d for n in rng.sample(NATIONAL, 200) + rng.sample(TENANT, 100) for d in (-1, 0, 1)]
    return [*near, 8613800138000, 8613912345678, 8617012345678, 12015550100, 12015550999]


async def _same_as_store(rig: Rig) -> int:
    """Every probe without records: the replica's Facts equal the store's. Returns how many were compared."""
    compared = 0
    for number in _probes():
        for originators in ((), ("account:a1", "trunk:t1")):
            local = rig.replica.local_facts("acme", number, originators)
            if local is None:
                continue
            assert local == await rig.store.facts("acme", number, entity="bank-1", originators=originators), number
            compared += 1
    return compared


async def _settled(rig: Rig) -> None:
    while not await rig.follower.poll_once():
        pass


async def test_replica_gives_the_stores_facts_through_edits_rules_and_a_swap(rig: Rig) -> None:
    assert await _same_as_store(rig) > 1000
    assert rig.replica.local_facts("acme", 12015550100) is None  # declined: has records, round trip
    await rig.store.add_numbers("national", [12015550999, 8613800138000])
    await rig.store.remove_numbers("national", [NATIONAL[5], NATIONAL[6]])
    await rig.store.set_prefix_rule("tenant:acme", "86139")
    await rig.store.set_prefix_rule("national", "8613", present=False)
    await rig.ledger.append(event(Action.BLOCK, f"+{NATIONAL[7]}"))
    await _settled(rig)
    assert rig.replica.local_facts("acme", NATIONAL[7]) is None
    assert await _same_as_store(rig) > 1000
    assert rig.follower.changes_applied >= 5
    await rig.store.replace_list("national", NATIONAL[::2])
    await _settled(rig)
    assert rig.follower.lists["national"].version == (await rig.store.facts("acme", 1)).national_version
    assert await _same_as_store(rig) > 1000
    client = Redis.from_url(rig.url)
    try:  # the swap trimmed the older versions' edits: the newest entry is all that is left
        assert await client.xlen("dnc:{national}:edits") == 1
    finally:
        await client.aclose()
    await rig.store.add_numbers("national", [NATIONAL[1]])  # an edit of the new version is followed
    await _settled(rig)
    assert rig.replica.local_facts("acme", NATIONAL[1]) == await rig.store.facts("acme", NATIONAL[1])


async def test_fresh_replica_answers_stale_replica_takes_the_round_trip(rig: Rig) -> None:
    number = NATIONAL[3]
    facts = await rig.replica.facts("acme", number)
    assert facts.national is not None
    assert rig.replica.answered == {"replica": 1, "round_trip": 0, "static": 0}
    await rig.replica.facts("acme", 12015550100)  # has records
    rig.clock.now += 0.5  # the replica's last read is now older than max_lag_ms (200)
    assert await rig.replica.facts("acme", number) == facts
    assert rig.replica.answered == {"replica": 1, "round_trip": 2, "static": 0}
    assert rig.replica.local_facts("nobody", number) is None  # a tenant not followed


async def test_answer_now_is_what_facts_answers_from_the_replica_and_none_when_it_would_not(rig: Rig) -> None:
    number = NATIONAL[3]
    now = rig.replica.answer_now("acme", number, ("account:a1",))
    assert now is not None
    assert now == await rig.store.facts("acme", number, originators=("account:a1",))
    assert rig.replica.answered == {"replica": 1, "round_trip": 0, "static": 0}
    assert rig.replica.answer_now("acme", 12015550100) is None  # has records: facts() takes the round trip
    assert rig.replica.answer_now("nobody", number) is None  # a tenant not followed
    rig.clock.now += 0.5  # older than max_lag_ms: facts() would take the round trip
    assert rig.replica.answer_now("acme", number) is None
    assert rig.replica.answered == {"replica": 1, "round_trip": 0, "static": 0}  # only answers are counted


async def test_the_gate_decides_from_the_replica_without_a_round_trip(rig: Rig) -> None:
    from dncgate.audit import AuditSink
    from dncgate.gate import CheckRequest, Gate
    from dncgate.model import Reason, TenantPolicy
    from dncgate.numbers import DialPlan

    audit = AuditSink(rig.store, linger=0)
    gate = Gate({"acme": TenantPolicy(name="acme", dial_plan=DialPlan(region="US"))}, rig.replica, audit,
                default_tenant="acme")
    log = structlog.get_logger()
    listed = await gate.check(CheckRequest(dialled=str(NATIONAL[3])[1:], door="agi"), log)
    declined = await gate.check(CheckRequest(dialled="2015550100", door="agi"), log)  # has records
    assert listed.decision.reason is Reason.NATIONAL_DNC
    assert declined.decision.reason is Reason.CATEGORY_DECLINED
    assert rig.replica.answered == {"replica": 1, "round_trip": 1, "static": 0}


@contextlib.asynccontextmanager
async def _own_server(tmp_path: Path, max_age_s: int) -> AsyncIterator[tuple[Rig, RedisServer]]:
    """A rig on a redis-server of its own (the test stops it)."""
    (tmp_path / "redis").mkdir()
    server = RedisServer("127.0.0.1", free_port(), tmp_path / "redis")
    server.start()
    try:
        rig = await _rig(server.url, tmp_path, Clock(), max_age_s=max_age_s)
        try:
            yield rig, server
        finally:
            await rig.replica.close()
            await rig.ledger.close()
            await rig.store.close()
    finally:
        server.stop()


async def test_store_down_decides_from_the_replica_for_at_most_max_age_then_fails_closed(tmp_path: Path) -> None:
    async with _own_server(tmp_path, max_age_s=60) as (rig, server):
        listed, clear = NATIONAL[3], 12015559990
        server.stop()
        rig.clock.now += 1.0  # past max_lag: the round trip is tried, and fails
        assert (await rig.replica.facts("acme", listed)).national is not None
        assert (await rig.replica.facts("acme", clear)).national is None
        assert rig.replica.answered["static"] == 2
        with pytest.raises(StoreUnavailable):  # a number with records never decides from the replica
            await rig.replica.facts("acme", 12015550100)
        rig.clock.now += 60.0  # now 61 s since the last complete read
        with pytest.raises(StoreUnavailable):
            await rig.replica.facts("acme", listed)
        assert rig.replica.answered["static"] == 2


async def test_max_age_zero_is_todays_behaviour(tmp_path: Path) -> None:
    async with _own_server(tmp_path, max_age_s=0) as (rig, server):
        server.stop()
        rig.clock.now += 1.0
        with pytest.raises(StoreUnavailable):
            await rig.replica.facts("acme", NATIONAL[3])
        assert rig.replica.answered["static"] == 0


async def test_settling_ledger_waits_before_it_acknowledges(rig: Rig) -> None:
    settling = SettlingLedger(rig.ledger, 0.05)
    sealed = await settling.append(event(Action.DECLINE, "+12015550777", categories=("*",)))
    assert sealed.seq == 2
    assert (await settling.preferences("acme", 12015550777)).declined == frozenset({"*"})
    assert settling.config == rig.ledger.config
