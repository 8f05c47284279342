"""Durable audit: decisions are spooled before the verdict, then written to the store in batches.

``submit`` appends the record to the write-ahead spool (``dncgate.audit_spool``: a local file,
no fsync on the call's path) and queues it; the writer sends batches to the store off the call's
path and tells the spool which records the store has. At start, what an earlier process left in
the spool is replayed first. If the store is down, batches are kept and retried; if the queue
overflows, the record is written whole into an ``audit.overflow`` log line (and stays in the
spool for the next start), so nothing is lost without a trace.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import structlog

from dncgate.audit_record import AuditRecord
from dncgate.audit_spool import AuditSpool, Segment, read_segment
from dncgate.store.errors import StoreError
from dncgate.store.protocol import ListStore

log = structlog.get_logger("dncgate.audit")
Queued = tuple[AuditRecord, Segment | None]  # a record and the spool segment holding it

LINGER = 0.05  # after the first record of a batch, for more to join it


class AuditSink:
    def __init__(
        self,
        store: ListStore,
        *,
        queue_size: int = 100_000,
        batch_size: int = 500,
        retry_delay: float = 0.5,
        linger: float = LINGER,
        spool: AuditSpool | None = None,
    ) -> None:
        self._store = store
        self._spool = spool
        # A deque and two events, not an asyncio.Queue: put/get/task_done cost more than the rest of a
        # record's way to the writer. ``queue_size`` <= 0: unbounded (as asyncio.Queue's maxsize).
        self._queue: deque[Queued] = deque()
        self._queue_size = queue_size
        self._arrived = asyncio.Event()  # set when a record is queued while the writer waits for one
        self._drained = asyncio.Event()  # set while nothing is queued or being written (close() waits for it)
        self._drained.set()
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        # Wait this long after the first record so that a busy gate writes batches, not one
        # store round trip per call (a single-record write costs about as much CPU as the call).
        self._linger = linger
        self._task: asyncio.Task[None] | None = None
        self._commits: asyncio.Task[None] | None = None
        self._current: list[Queued] = []
        self.written = 0
        self.overflowed = 0
        self.replayed = 0

    def submit(self, record: AuditRecord) -> None:
        """Spool and queue a record without waiting; never blocks the call.

        Called before the door sends the verdict: once it returns, a killed process loses nothing
        a power loss would not (see ``dncgate.audit_spool``).
        """
        segment = self._spool.append(record) if self._spool is not None else None
        if 0 < self._queue_size <= len(self._queue):
            self.overflowed += 1
            log.error("audit.overflow", spooled=segment is not None, **record.as_dict())
            return
        self._queue.append((record, segment))
        self._drained.clear()
        if not self._arrived.is_set():
            self._arrived.set()

    @property
    def backlog(self) -> int:
        """Records queued or in the batch being written: not in the store yet (``dncgate_audit_backlog``)."""
        return len(self._queue) + len(self._current)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dncgate-audit")
        if self._spool is not None and self._commits is None:
            self._commits = asyncio.create_task(self._spool.run_group_commit(), name="dncgate-audit-spool")

    async def _run(self) -> None:
        await self._replay()
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            queued = self._current = [self._queue.popleft()]  # held where close() can find it
            if self._linger and len(self._queue) < self._batch_size:
                await asyncio.sleep(self._linger)
            while len(queued) < self._batch_size and self._queue:
                queued.append(self._queue.popleft())
            await self._write([record for record, _ in queued])
            self._current = []
            self._spooled(queued)
            if not self._queue:
                self._drained.set()

    def _spooled(self, queued: list[Queued]) -> None:
        """Tell the spool which of its records the store now has."""
        if self._spool is None:
            return
        counts: dict[Segment, int] = {}
        for _, segment in queued:
            if segment is not None:
                counts[segment] = counts.get(segment, 0) + 1
        for segment, count in counts.items():
            self._spool.written(segment, count)

    async def _replay(self) -> None:
        """Write what an earlier process left in the spool (the store skips decision ids it has)."""
        if self._spool is None:
            return
        for segment in list(self._spool.leftover):
            count = 0
            for batch in read_segment(segment.path, self._batch_size):
                await self._write(batch)
                count += len(batch)
            self._spool.replay_done(segment)
            self.replayed += count
            log.info("audit.spool_replayed", path=str(segment.path), records=count)

    async def _write(self, batch: list[AuditRecord]) -> None:
        while True:
            try:
                await self._store.append_audit(batch)
            except StoreError as exc:
                log.warning("audit.store_failed", error=str(exc), pending=len(batch) + len(self._queue))
                await asyncio.sleep(self._retry_delay)
                continue
            self.written += len(batch)
            return

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (bounded by ``timeout``), then stop; what is left is logged."""
        if self._task is None:
            return
        task, self._task = self._task, None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout)
        for running in (task, self._commits):
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        self._commits = None
        unwritten = self._current + list(self._queue)
        self._current = []
        self._queue.clear()
        for record, segment in unwritten:
            self.overflowed += 1
            log.error("audit.unwritten_at_shutdown", spooled=segment is not None, **record.as_dict())
        if self._spool is not None:
            await self._spool.close()  # what the store lacks stays in the spool for the next start
