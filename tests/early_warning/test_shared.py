"""Several gates, one view: facts through Redis streams, partitions held by one analyser at a time,
taken over with their checkpoint and their pending entries when an analyser stops or dies.

A real redis-server; the leases run on an injected clock (no test waits for wall-clock time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from dncgate.early_warning.alerts import Alert
from dncgate.early_warning.analyser import Analyser, Watch
from dncgate.early_warning.facts import partition_of
from dncgate.early_warning.rules import figures
from dncgate.errors import DncgateError
from dncgate.store.errors import StoreUnavailable
from dncgate.store.redis.fact_consumer import PartitionConsumer
from dncgate.store.redis.fact_producer import FactProducer
from dncgate.store.redis.fact_stream import FactStreams, facts_key
from tests.conftest import RedisServer, free_port
from tests.enforcement.conftest import T0, Clock

PARTITIONS = 8
LEASE = 15.0
WATCHES = {"acme": Watch("acme")}
NOON = T0 + timedelta(hours=9)
ORIGINATORS = [f"acct-{i}" for i in range(24)]


@dataclass
class Analysing:
    """One gate's analyser in the group: its own connection, analyser and alerts."""

    consumer: PartitionConsumer
    alerts: list[Alert] = field(default_factory=list)

    @property
    def analyser(self) -> Analyser:
        return self.consumer.analyser

    def counts(self, at: float) -> dict[str, int]:
        """Each originator it holds -> its attempts in the hour window."""
        self.analyser.flush(at)
        return {o: int(figures(s)["attempts_1h"]) for _, o, s in self.analyser.states()}

    async def drain(self) -> int:
        total = 0
        while read := await self.consumer.poll():
            total += read
        return total


@dataclass
class Group:
    url: str
    clock: Clock
    opened: list[FactStreams] = field(default_factory=list)

    def streams(self, cls: type[FactStreams] = FactStreams) -> FactStreams:
        streams = cls.connect(self.url, partitions=PARTITIONS, maxlen=10_000)
        self.opened.append(streams)
        return streams

    def producer(self) -> FactProducer:
        return FactProducer(self.streams(), WATCHES, queue=10_000, batch=50, flush_interval=0.05)

    def analysing(self, name: str, cls: type[FactStreams] = FactStreams) -> Analysing:
        alerts: list[Alert] = []
        analyser = Analyser(WATCHES, on_alert=alerts.append)
        return Analysing(PartitionConsumer(self.streams(cls), analyser, name=name, lease=LEASE, batch=20,
                                           clock=self.clock), alerts)


@pytest.fixture
async def group(redis_server: RedisServer) -> AsyncIterator[Group]:
    redis_server.flush()
    built = Group(redis_server.url, Clock(NOON))
    try:
        yield built
    finally:
        for streams in built.opened:
            await streams.close()


def send(gate: FactProducer, originator: str, at: float, count: int, *, refused: bool = False, step: float = 2.0,
         first: int = 0) -> None:
    for i in range(first, first + count):
        gate.attempt("acme", originator, at + i * step, 8613900000000 + i * 7919, refused, not refused, False,
                     "+86105", f"d-{originator}-{i}")


async def every_originator(gate: FactProducer, at: float, count: int, first: int = 0) -> None:
    """``count`` attempts of every originator through ``gate``, sent."""
    for originator in ORIGINATORS:
        send(gate, originator, at + 5 * first, count, first=first)
    await gate.flush()


async def balanced(*members: Analysing) -> None:
    for _ in range(2):  # the first to come takes all; the second round evens the shares
        for member in members:
            await member.consumer.balance()


async def test_two_analysers_share_the_partitions_and_count_each_originator_once(group: Group) -> None:
    a, b = group.analysing("a"), group.analysing("b")
    await balanced(a, b)
    assert len(a.consumer.held) == len(b.consumer.held) == PARTITIONS // 2
    assert not set(a.consumer.held) & set(b.consumer.held)
    gate_1, gate_2 = group.producer(), group.producer()
    at = group.clock.at.timestamp()
    for originator in ORIGINATORS:  # every originator calls through both gates
        send(gate_1, originator, at, 5)
        send(gate_2, originator, at + 1, 5, first=5)
    assert await gate_1.flush() == await gate_2.flush() == 5 * len(ORIGINATORS)
    assert await a.drain() + await b.drain() > 0
    counted_a, counted_b = a.counts(at + 60), b.counts(at + 60)
    assert not set(counted_a) & set(counted_b)
    assert set(counted_a) | set(counted_b) == set(ORIGINATORS)
    assert set(counted_a.values()) == set(counted_b.values()) == {10}  # both gates' facts, once each
    for originator in counted_a:
        assert partition_of("acme", originator, PARTITIONS) in a.consumer.held
    assert a.consumer.applied + b.consumer.applied == 10 * len(ORIGINATORS)


async def test_a_blaster_split_over_two_gates_raises_the_alert_neither_gate_alone_would(group: Group) -> None:
    a, b = group.analysing("a"), group.analysing("b")
    await balanced(a, b)
    gate_1, gate_2 = group.producer(), group.producer()
    at = group.clock.at.timestamp()
    alone: list[Alert] = []
    by_itself = Analyser(WATCHES, on_alert=alone.append)  # what one gate's own analyser would see
    for i in range(4):  # 4 of 8 refused in all: half; each gate saw 4 calls (min 6 for the refused rule)
        refused = i % 2 == 0
        send(gate_1, "blaster", at + 4 * i, 1, refused=refused, first=i)
        send(gate_2, "blaster", at + 4 * i + 2, 1, refused=refused, first=10 + i)
        by_itself.attempt("acme", "blaster", at + 4 * i, 8613900000000 + i, refused, not refused, False, "+86105",
                          f"d-{i}")
    by_itself.flush(at + 60)
    assert not alone
    await gate_1.flush()
    await gate_2.flush()
    await a.drain()
    await b.drain()
    group.clock.advance(seconds=60)
    await a.consumer.commit()  # a checkpoint closes the open slot and evaluates the rules
    await b.consumer.commit()
    raised = a.alerts + b.alerts
    assert {(x.originator.value, x.rule) for x in raised} == {("blaster", "refused")}
    assert raised[0].figures["attempts_1h"] > 4  # more than either gate decided
    holder = a if partition_of("acme", "blaster", PARTITIONS) in a.consumer.held else b
    assert holder.alerts == raised


async def checkpoint_then_more(group: Group, a: Analysing, b: Analysing) -> float:
    """4 attempts per originator, read, and checkpointed by ``a``; then 3 more, read by both, not
    checkpointed (``a``'s pending in the group). The first attempt's time."""
    gate = group.producer()
    at = group.clock.at.timestamp()
    await every_originator(gate, at, 4)
    await a.drain()
    await b.drain()
    await a.consumer.commit()  # saved and acknowledged
    await every_originator(gate, at, 3, first=4)
    assert await a.drain() > 0
    await b.drain()
    return at


async def test_an_analyser_that_stops_hands_its_partitions_over_with_their_counts(group: Group) -> None:
    a, b = group.analysing("a"), group.analysing("b")
    await balanced(a, b)
    at = await checkpoint_then_more(group, a, b)
    await a.consumer.close()  # checkpoints the 3 more before it hands over
    await b.consumer.balance()  # a left the group: b's share is every partition
    assert len(b.consumer.held) == PARTITIONS
    assert b.counts(at + 60) == dict.fromkeys(ORIGINATORS, 7)


async def test_an_analyser_that_dies_has_its_pending_entries_claimed_and_nothing_counted_twice(
        group: Group) -> None:
    a, b = group.analysing("a"), group.analysing("b")
    await balanced(a, b)
    at = await checkpoint_then_more(group, a, b)  # a dies with 3 a originator applied, not saved
    of_a = {o for o in ORIGINATORS if partition_of("acme", o, PARTITIONS) in a.consumer.held}
    assert of_a
    group.clock.advance(seconds=LEASE + 1)  # a's lease and membership lapse
    await b.consumer.balance()
    assert len(b.consumer.held) == PARTITIONS
    assert b.counts(at + 60) == dict.fromkeys(ORIGINATORS, 7)  # a's checkpoint + a's pending entries, once
    assert b.consumer.applied == 7 * (len(ORIGINATORS) - len(of_a)) + 3 * len(of_a)  # a's 4 came saved
    assert b.consumer.skipped == 0
    await b.consumer.commit()
    assert await b.drain() == 0


async def test_a_stalled_analyser_loses_its_partitions_and_its_late_checkpoint_is_refused(group: Group) -> None:
    a, b = group.analysing("a"), group.analysing("b")
    await a.consumer.balance()  # a alone: every partition
    at = group.clock.at.timestamp()
    await every_originator(group.producer(), at, 4)
    assert await a.drain() > 0  # applied, not saved: then a stalls past its lease
    group.clock.advance(seconds=LEASE + 1)
    await b.consumer.balance()
    assert len(b.consumer.held) == PARTITIONS
    assert await a.consumer.commit() == 0  # the lease is b's: a's states are not written, a forgets them
    assert not a.consumer.held
    assert a.analyser.originators() == 0
    assert b.counts(at + 60) == dict.fromkeys(ORIGINATORS, 4)  # a's pending entries, claimed by b
    await a.consumer.balance()  # a is back: its share once b hands over the surplus
    await b.consumer.balance()
    await a.consumer.balance()
    assert len(a.consumer.held) == len(b.consumer.held) == PARTITIONS // 2
    assert b.analyser.originators() + a.analyser.originators() == len(ORIGINATORS)  # b's checkpoint, a reads it
    assert a.counts(at + 60) | b.counts(at + 60) == dict.fromkeys(ORIGINATORS, 4)


async def test_nothing_is_read_on_a_lease_about_to_lapse(group: Group) -> None:
    a = group.analysing("a")
    await a.consumer.balance()
    at = group.clock.at.timestamp()
    await every_originator(group.producer(), at, 2)
    group.clock.advance(seconds=LEASE - 1)  # less left than a read may take: its entries could be claimed
    assert await a.consumer.poll() == 0
    await a.consumer.balance()  # renewed
    assert await a.drain() > 0
    assert a.counts(at + 60) == dict.fromkeys(ORIGINATORS, 2)


async def test_each_stream_is_trimmed_to_about_maxlen(group: Group, redis_server: RedisServer) -> None:
    streams = FactStreams.connect(group.url, partitions=1, maxlen=100)
    gate = FactProducer(streams, WATCHES, queue=10_000, batch=1, flush_interval=0.05)
    try:
        send(gate, "acct", group.clock.at.timestamp(), 2000)
        assert await gate.flush() == 2000
        client = Redis.from_url(redis_server.url)
        try:
            assert 100 <= await client.xlen(facts_key("0")) < 300  # MAXLEN ~: whole nodes of entries
        finally:
            await client.aclose()
    finally:
        await streams.close()


class DiesBeforeAcknowledging(FactStreams):
    """An analyser whose process dies between writing its checkpoint and acknowledging the entries."""

    async def ack(self, partition: int, ids: object) -> None:
        raise StoreUnavailable("died before XACK")


async def test_a_death_between_checkpoint_and_acknowledgement_counts_nothing_twice(group: Group) -> None:
    a = group.analysing("a", DiesBeforeAcknowledging)
    b = group.analysing("b")
    await a.consumer.balance()  # a alone: every partition
    at = group.clock.at.timestamp()
    await every_originator(group.producer(), at, 6)
    await a.drain()
    with pytest.raises(DncgateError):
        await a.consumer.commit()  # the states are in Redis, the entries still pending
    group.clock.advance(seconds=LEASE + 1)
    await b.consumer.balance()
    assert len(b.consumer.held) == PARTITIONS
    assert b.counts(at + 60) == dict.fromkeys(ORIGINATORS, 6)  # the saved state's mark skips them
    assert b.consumer.skipped == 6 * len(ORIGINATORS)
    assert b.consumer.applied == 0


async def test_a_gate_that_cannot_reach_redis_drops_and_counts_its_facts() -> None:
    unreachable = FactStreams.connect(f"redis://127.0.0.1:{free_port()}/0", partitions=PARTITIONS, maxlen=100,
                                      timeout=0.5)
    gate = FactProducer(unreachable, WATCHES, queue=10, batch=5, flush_interval=0.05)
    try:
        send(gate, "acct", 0.0, 12)  # two over the queue
        assert gate.held == 10
        assert gate.dropped == 2
        assert await gate.flush() == 0  # no exception: the call path never sees it
        assert gate.dropped == 12
        assert gate.held == 0
        gate.complaint("acme", "+86105", 1.0)  # to every partition
        assert gate.held == PARTITIONS
    finally:
        await unreachable.close()


async def test_a_complaint_sent_to_every_partition_counts_once_for_its_originator(group: Group) -> None:
    a, b = group.analysing("a"), group.analysing("b")
    await balanced(a, b)
    gate = group.producer()
    at = group.clock.at.timestamp()
    send(gate, "blaster", at, 3)
    await gate.flush()
    await a.drain()
    await b.drain()
    gate.complaint("acme", "+86105", at + 10)
    await gate.flush()
    await a.drain()
    await b.drain()
    days = []
    for member in (a, b):
        member.analyser.flush(at + 60)
        days += [s.day(2) for _, _, s in member.analyser.states()]  # D_COMPLAINTS
    assert days == [1]


async def test_entries_trimmed_before_the_analysers_read_them_are_counted_and_logged(
    group: Group, redis_server: RedisServer,
) -> None:
    """MAXLEN outran the analysers: what was trimmed unread is said (counter, log), once, exactly."""
    streams = FactStreams.connect(group.url, partitions=1, maxlen=100)
    gate = FactProducer(streams, WATCHES, queue=10_000, batch=1, flush_interval=0.05)
    reader = FactStreams.connect(group.url, partitions=1, maxlen=100)
    consumer = PartitionConsumer(reader, Analyser(WATCHES), name="a", lease=LEASE, batch=50, clock=group.clock)
    client = Redis.from_url(redis_server.url)
    try:
        await consumer.balance()
        at = group.clock.at.timestamp()
        send(gate, "acct", at, 10)
        assert await gate.flush() == 10
        assert await consumer.poll() == 10  # read in time: nothing lost
        assert consumer.trimmed == 0
        send(gate, "acct", at + 100, 2000, first=10)
        assert await gate.flush() == 2000
        kept = await client.xlen(facts_key("0"))
        assert kept < 2000  # MAXLEN ~ 100 trimmed most of them unread
        with capture_logs() as logs:
            read = 0
            while got := await consumer.poll():
                read += got
        assert read == kept
        assert consumer.trimmed == 2000 - kept  # exactly what was never read
        assert [e["entries"] for e in logs if e["event"] == "early_warning.entries_trimmed_unread"] == [2000 - kept]
        send(gate, "acct", at + 9000, 5, first=3000)
        assert await gate.flush() == 5
        assert await consumer.poll() == 5
        assert consumer.trimmed == 2000 - kept  # read in time again: no new loss, none counted twice
    finally:
        await client.aclose()
        await reader.close()
        await streams.close()


async def test_only_the_lease_holder_sets_the_group_s_counter_and_a_loss_is_counted_once(
    group: Group, redis_server: RedisServer,
) -> None:
    """A read that outlasted its lease must not set the shared group back: its mark is refused (the
    loss is not counted by it), and the holder counts the loss once."""
    streams = FactStreams.connect(group.url, partitions=1, maxlen=100)
    gate = FactProducer(streams, WATCHES, queue=10_000, batch=1, flush_interval=0.05)
    now = int(group.clock.at.timestamp() * 1000)
    at = group.clock.at.timestamp()
    client = Redis.from_url(redis_server.url)
    try:
        await streams.ensure_group(0)
        assert await streams.hold(0, "b", now, now + 60_000, take=True)  # b holds the partition
        send(gate, "acct", at, 5)
        assert await gate.flush() == 5
        assert [(len(b.entries), b.trimmed) for b in await streams.read("b", [0], 10, None)] == [(5, 0)]
        send(gate, "acct", at + 100, 2000, first=5)
        assert await gate.flush() == 2000
        kept = await client.xlen(facts_key("0"))
        late = await streams.read("a", [0], 10, None)  # a's read, its lease gone
        assert [(len(b.entries), b.trimmed) for b in late] == [(10, 0)]  # not said by a: its mark was refused
        held = await streams.read("b", [0], 10, None)
        # Said once, by the holder; a's 10 entries (read past its lease, from the stream's head) count
        # as read in the group's counter, so the loss said is short of them, never counted twice.
        assert [(len(b.entries), b.trimmed) for b in held] == [(10, 2000 - kept - 10)]
        (info,) = await client.xinfo_groups(facts_key("0"))
        assert info["entries-read"] == 5 + (2000 - kept) + 10  # set by the holder's mark
        assert [b.trimmed for b in await streams.read("b", [0], 10, None)] == [0]  # and not said twice
    finally:
        await client.aclose()
        await streams.close()
