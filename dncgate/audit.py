"""Durable audit, off the call's path: decisions are queued and written to the store in batches.

The decision's JSON log line is written at once by the gate; this sink adds the durable record.
If the store is down, batches are kept and retried; if the queue overflows, the record is written
whole into an ``audit.overflow`` log line, so nothing is lost without a trace.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from dncgate.audit_record import AuditRecord
from dncgate.store.errors import StoreError
from dncgate.store.protocol import ListStore

log = structlog.get_logger("dncgate.audit")


class AuditSink:
    def __init__(
        self,
        store: ListStore,
        *,
        queue_size: int = 100_000,
        batch_size: int = 500,
        retry_delay: float = 0.5,
        linger: float = 0.05,
    ) -> None:
        self._store = store
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(queue_size)
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        # Wait this long after the first record so that a busy gate writes batches, not one
        # store round trip per call (a single-record write costs about as much CPU as the call).
        self._linger = linger
        self._task: asyncio.Task[None] | None = None
        self._current: list[AuditRecord] = []
        self.written = 0
        self.overflowed = 0

    def submit(self, record: AuditRecord) -> None:
        """Queue a record without waiting; never blocks the call."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.overflowed += 1
            log.error("audit.overflow", **record.as_dict())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dncgate-audit")

    async def _run(self) -> None:
        while True:
            batch = self._current = [await self._queue.get()]  # held where close() can find it
            if self._linger and self._queue.qsize() < self._batch_size:
                await asyncio.sleep(self._linger)
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)
            self._current = []
            for _ in batch:
                self._queue.task_done()

    async def _write(self, batch: list[AuditRecord]) -> None:
        while True:
            try:
                await self._store.append_audit(batch)
            except StoreError as exc:
                log.warning("audit.store_failed", error=str(exc), pending=len(batch) + self._queue.qsize())
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
            await asyncio.wait_for(self._queue.join(), timeout)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        unwritten = self._current + [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        self._current = []
        for record in unwritten:
            self.overflowed += 1
            log.error("audit.unwritten_at_shutdown", **record.as_dict())
