"""One analyser of the shared early warning: the partitions it holds, read, applied, checkpointed.

Every ``serve`` with ``[early_warning] transport = "redis"`` runs one :class:`PartitionConsumer`
over its :class:`~dncgate.early_warning.analyser.Analyser`; together they are the consumer group
``analysers`` of every partition's stream (``fact_stream``). Each partition is held by one of them
at a time, by a lease (``lease_s``) its holder renews every third of it:

- ``balance``: say this analyser is alive, count the live ones, take a free or expired partition
  while holding fewer than its share (``ceil(partitions / analysers)``), hand back (checkpoint, then
  release) those over its share, and drop what a lost lease held;
- taking a partition: its checkpoint is read (each originator's state and the ID of the last entry
  it includes), then every entry pending in the group (read by the analyser that held it before,
  not acknowledged) is claimed (XAUTOCLAIM) and applied, before new entries are read;
- ``poll``: new entries of the partitions held (XREADGROUP, ``batch`` at a time), applied; a
  partition is read only while its lease outlasts the read, so whatever this analyser read is
  pending for it when a next holder takes the partition over (and claims it);
- ``commit`` (every ``checkpoint_interval_s`` and before a partition is handed back): the states
  that changed are written while the lease is still this analyser's (a script checks it), then the
  entries applied are acknowledged (XACK).

So an entry is acknowledged only once the state it changed is in Redis, and an entry applied
again after a takeover is skipped for an originator whose saved state already includes it (the
state's mark): each fact is counted once in the saved state. What is raised in between may be
raised again (alerts are at least once; their id is stable for the same crossing, and a case
step is idempotent by it).
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from dncgate.early_warning import facts
from dncgate.early_warning.analyser import IDLE_S, Analyser
from dncgate.errors import DncgateError
from dncgate.store.redis.fact_stream import Entry, FactStreams, Mark, parse_id

log = structlog.get_logger("dncgate.early_warning")
Key = tuple[str, str]  # tenant, originator
SEP = "\x1f"


def analyser_name() -> str:
    """This process's name in the group: host, pid and a random part (a restart is a new analyser)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}".replace(" ", "_")


@dataclass
class _Held:
    """A partition this analyser holds: what it applied and not yet acknowledged, and what changed."""

    acks: list[bytes] = field(default_factory=list)
    dirty: set[Key] = field(default_factory=set)


class PartitionConsumer:
    def __init__(self, streams: FactStreams, analyser: Analyser, *, name: str, lease: float, batch: int,
                 clock: Callable[[], datetime]) -> None:
        self.streams, self.analyser, self.name = streams, analyser, name
        self.lease_ms, self.batch, self._clock = int(lease * 1000), batch, clock
        self.held: dict[int, _Held] = {}
        self._until: dict[int, int] = {}  # each partition's lease, as last renewed (ms)
        self._marks: dict[Key, Mark] = {}
        self._grouped: set[int] = set()
        self._lock = asyncio.Lock()
        self.applied = self.skipped = self.malformed = self.misplaced = 0
        self.trimmed = 0  # entries of the partitions held, trimmed before any analyser read them
        self._balanced_ms = -self.lease_ms

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    def _partition(self, key: Key) -> int:
        return facts.partition_of(key[0], key[1], self.streams.partitions)

    # -- holding partitions ------------------------------------------------------------------------

    async def balance(self) -> None:
        """Renew, hand back and take partitions for this analyser's share."""
        async with self._lock:
            now = self._now_ms()
            self._balanced_ms = now
            until = now + self.lease_ms
            alive = await self.streams.join(self.name, now, until)
            share = math.ceil(self.streams.partitions / max(alive, 1))
            for partition in sorted(self.held):
                if not await self.streams.hold(partition, self.name, now, until, take=False):
                    self._lose(partition, "lease taken over")
                    continue
                self._until[partition] = until
                if partition not in self._grouped:
                    await self._group(partition)
            for partition in sorted(self.held, reverse=True)[:max(len(self.held) - share, 0)]:
                await self._hand_back(partition)
            for partition in range(self.streams.partitions):
                if len(self.held) >= share:
                    break
                if partition not in self.held and \
                        await self.streams.hold(partition, self.name, now, until, take=True):
                    self._until[partition] = until
                    await self._take(partition)

    async def _group(self, partition: int) -> None:
        await self.streams.ensure_group(partition)
        self._grouped.add(partition)

    async def _take(self, partition: int) -> None:
        if partition not in self._grouped:
            await self._group(partition)
        self.held[partition] = _Held()
        restored = 0
        try:
            async for name, mark, state in self.streams.states(partition):
                tenant, _, originator = name.decode().partition(SEP)
                if self.analyser.restore(tenant, originator, state):
                    self._marks[(tenant, originator)] = mark
                    restored += 1
            claimed = await self.sweep(partition, 0)
        except DncgateError:
            self._lose(partition, "checkpoint unreadable")  # half a checkpoint would be saved over the whole
            raise
        log.info("early_warning.partition_taken", partition=partition, analyser=self.name, originators=restored,
                 claimed=claimed)

    async def sweep(self, partition: int, min_idle_ms: int) -> int:
        """Claim and apply the partition's pending entries idle at least ``min_idle_ms`` (all: 0)."""
        start: bytes | str = "0-0"
        claimed = 0
        while partition in self.held:
            start, entries = await self.streams.claim(partition, self.name, start, self.batch, min_idle_ms)
            for entry in entries:
                self._apply(partition, entry)
            claimed += len(entries)
            if start in (b"0-0", "0-0"):
                break
        return claimed

    async def _hand_back(self, partition: int) -> bool:
        """Checkpoint the partition and release it; False: its lease was lost meanwhile."""
        if await self._commit(partition) is None:
            return False
        await self.streams.release(partition, self.name)
        self._lose(partition, "handed back")
        return True

    def _lose(self, partition: int, why: str) -> None:
        """Forget the partition's states: what they took since the checkpoint is pending, its next holder applies it."""
        held = self.held.pop(partition, None)
        self._until.pop(partition, None)
        dropped = self.analyser.drop(lambda tenant, originator: self._partition((tenant, originator)) == partition)
        for key in [k for k in self._marks if self._partition(k) == partition]:
            del self._marks[key]
        log.info("early_warning.partition_left", partition=partition, analyser=self.name, why=why,
                 originators=dropped, unacknowledged=len(held.acks) if held else 0)

    # -- facts ---------------------------------------------------------------------------------------

    async def poll(self, block_ms: int | None = None) -> int:
        """Read and apply the new entries of the partitions held; how many entries. A partition is
        read only while its lease outlasts the read (so nothing is read past the lease, when a next
        holder could have claimed the pending entries already)."""
        ready = self._readable(block_ms)
        if not ready:
            return 0
        read = await self.streams.read(self.name, ready, self.batch, block_ms)
        count = 0
        for batch in read:
            if batch.trimmed:
                self.trimmed += batch.trimmed
                log.warning("early_warning.entries_trimmed_unread", partition=batch.partition, entries=batch.trimmed,
                            analyser=self.name, advice="raise [early_warning.stream] maxlen or run more analysers")
            if batch.partition not in self.held or self._until.get(batch.partition, 0) <= self._now_ms():
                continue  # lost, or its lease lapsed, while reading: pending, its next holder claims them
            for entry in batch.entries:
                self._apply(batch.partition, entry)
            count += len(batch.entries)
        return count

    def _readable(self, block_ms: int | None) -> list[int]:
        # A read is up to three calls (read, wait, read again), each within the streams' deadline.
        latest = self._now_ms() + (block_ms or 0) + 3 * int(self.streams.deadline * 1000)
        return [partition for partition in sorted(self.held) if self._until.get(partition, 0) > latest]

    def _apply(self, partition: int, entry: Entry) -> None:
        entry_id, raw = entry
        held = self.held.get(partition)
        if held is None:  # lost meanwhile: pending, its next holder claims it
            return
        held.acks.append(entry_id)
        mark = parse_id(entry_id)
        try:
            batch = facts.decode(raw) if raw is not None else []
        except ValueError as exc:
            self.malformed += 1
            log.warning("early_warning.entry_unreadable", partition=partition, entry=entry_id, error=str(exc))
            return
        here: set[Key] = set()  # the originators this entry counted for (its other facts count too)
        for fact in batch:
            try:
                key = facts.key_of(fact, self.analyser)
                if key is None:  # a complaint about a caller ID nobody here used
                    continue
                if self._partition(key) != partition:
                    if fact[0] != "c":  # a complaint is sent to every partition: this one is not its originator's
                        self.misplaced += 1  # a gate with another partition count
                    continue
                if key not in here and self._marks.get(key, (-1, -1)) >= mark:
                    self.skipped += 1  # in the saved state already
                    continue
                facts.apply(fact, self.analyser)
            except (ValueError, TypeError, IndexError):
                self.malformed += 1
                continue
            self._marks[key] = mark
            here.add(key)
            held.dirty.add(key)
            self.applied += 1

    # -- checkpoints ---------------------------------------------------------------------------------

    async def commit(self) -> int:
        """Checkpoint every partition held; how many states were written. One that fails does not
        stop the others (the first failure is raised after them)."""
        async with self._lock:
            written = 0
            failed: DncgateError | None = None
            for partition in sorted(self.held):
                try:
                    written += await self._commit(partition) or 0
                except DncgateError as exc:
                    failed = failed or exc
            if failed is not None:
                raise failed
            return written

    async def _commit(self, partition: int) -> int | None:
        """Save the partition's changed states, then acknowledge its entries; None: the lease is lost."""
        held = self.held[partition]
        acks, dirty = held.acks, held.dirty
        held.acks, held.dirty = [], set()
        now = self._clock().timestamp()
        rows = []
        for key in dirty:
            dumped = self.analyser.dump(key[0], key[1], now)
            if dumped is None:  # evicted by max_originators
                self._marks.pop(key, None)
                continue
            rows.append((key[0] + SEP + key[1], self._marks[key], dumped[0], dumped[1]))
        try:
            if not await self.streams.save(partition, self.name, rows):
                self._lose(partition, "lease taken over")
                return None
            await self.streams.ack(partition, acks)
        except DncgateError:
            held.acks[:0] = acks  # the next checkpoint tries again
            held.dirty |= dirty
            raise
        await self.streams.forget(partition, int(now) - IDLE_S)
        if len(self._marks) > self.analyser.max_originators:  # states evicted meanwhile
            for key in [k for k in self._marks if not self.analyser.holds(*k)]:
                del self._marks[key]
        return len(rows)

    # -- running -------------------------------------------------------------------------------------

    async def run(self, block_ms: int = 500) -> None:
        """Balance every third of the lease and apply what comes, until cancelled. Redis failing:
        logged, tried again after a pause that doubles up to a third of the lease, balanced first."""
        failures = 0
        while True:
            try:
                if self._now_ms() - self._balanced_ms >= self.lease_ms // 3:
                    await self.balance()
                    for partition in sorted(self.held):
                        await self.sweep(partition, 4 * self.lease_ms)  # read by a holder that lost it
                if self._readable(block_ms):
                    await self.poll(block_ms)  # waits up to block_ms for an entry
                else:
                    await asyncio.sleep(block_ms / 1000)  # nothing held (or no lease that outlasts a read)
                failures = 0
            except DncgateError as exc:
                failures += 1
                log.error("early_warning.stream_failed", analyser=self.name, error=str(exc),
                          error_type=type(exc).__name__, failures=failures)
                self._grouped.clear()  # a Redis that restarted empty has no group
                self._balanced_ms = -self.lease_ms
                await asyncio.sleep(min(block_ms / 1000 * 2 ** min(failures, 10), self.lease_ms / 3000))

    async def close(self) -> None:
        """Checkpoint and hand back every partition, and leave the group (this analyser is deleted
        from the groups of the partitions it handed back: nothing of it is pending there)."""
        async with self._lock:
            handed = [partition for partition in sorted(self.held) if await self._hand_back(partition)]
            await self.streams.leave(self.name, handed)
