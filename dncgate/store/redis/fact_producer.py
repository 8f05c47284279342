"""A gate's call facts to the shared analysers' Redis streams, off the call path.

:class:`FactProducer` is the sink ``Signals`` hands facts to (``early_warning.facts.FactSink``).
A fact is appended to its partition's buffer in memory (no await: the gate's observers run after
the verdict went out, and a call never waits on Redis); ``run`` sends what is held every
``flush_interval_s`` (or as soon as a batch is full) in one pipelined round trip, ``batch`` facts
per entry. Delivery is at most once: when ``queue`` facts are held the next ones are dropped,
and a send that fails or misses its deadline drops what it carried; both are counted
(``dropped``) and logged, never retried (a retried send that had reached Redis would be counted twice).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import structlog

from dncgate.early_warning import facts
from dncgate.early_warning.analyser import Watch
from dncgate.errors import DncgateError
from dncgate.store.redis.fact_stream import FactStreams

log = structlog.get_logger("dncgate.early_warning")


class FactProducer:
    def __init__(self, streams: FactStreams, watches: Mapping[str, Watch], *, queue: int, batch: int,
                 flush_interval: float) -> None:
        self.streams, self._watches = streams, watches
        self.queue, self.batch, self.flush_interval = queue, batch, flush_interval
        self._held: list[list[facts.Fact]] = [[] for _ in range(streams.partitions)]
        self._count = 0
        self._wake = asyncio.Event()
        self.unkeyed = 0
        self.sent = 0
        self.dropped = 0
        self._logged_drops = 0

    # -- the sink (synchronous: called from the gate's observers and the feeds' consumer) ----------

    def watch(self, tenant: str) -> Watch | None:
        return self._watches.get(tenant)

    def attempt(self, tenant: str, originator: str, at: float, callee: int, refused: bool, allowed: bool,
                service: bool, caller_id: str, decision_id: str) -> None:
        if not originator:
            self.unkeyed += 1
            return
        self._put(facts.partition_of(tenant, originator, len(self._held)),
                  facts.attempt(tenant, originator, at, callee, refused, allowed, service, caller_id, decision_id))

    def ended(self, tenant: str, originator: str, at: float, answered: bool, billsec: float, call_id: str) -> None:
        if not originator:
            self.unkeyed += 1
            return
        self._put(facts.partition_of(tenant, originator, len(self._held)),
                  facts.ended(tenant, originator, at, answered, billsec, call_id))

    def complaint(self, tenant: str, caller_id: str, at: float) -> None:
        """A complaint goes to every partition: the gate does not know whose the caller ID is."""
        fact = facts.complaint(tenant, caller_id, at)
        for partition in range(len(self._held)):
            self._put(partition, fact)

    def _put(self, partition: int, fact: facts.Fact) -> None:
        if self._count >= self.queue:
            self.dropped += 1
            return
        held = self._held[partition]
        held.append(fact)
        self._count += 1
        if len(held) >= self.batch:
            self._wake.set()

    @property
    def held(self) -> int:
        return self._count

    # -- sending -----------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Send every fact held (one round trip); how many were sent. A failure drops them (counted)."""
        entries: list[tuple[int, bytes]] = []
        for partition, held in enumerate(self._held):
            for start in range(0, len(held), self.batch):
                entries.append((partition, facts.encode(held[start:start + self.batch])))
            held.clear()
        count, self._count = self._count, 0
        if entries:
            try:
                await self.streams.add(entries)
                self.sent += count
            except DncgateError as exc:
                self.dropped += count
                log.error("early_warning.facts_not_sent", facts=count, dropped=self.dropped, error=str(exc))
                self._logged_drops = self.dropped
                return 0
        if self.dropped > self._logged_drops:
            log.error("early_warning.facts_dropped", dropped=self.dropped, queue=self.queue)
            self._logged_drops = self.dropped
        return count

    async def run(self) -> None:
        """Send what is held every ``flush_interval`` (sooner when a batch fills), until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            await self.flush()
