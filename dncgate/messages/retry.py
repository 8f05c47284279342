"""Opt-outs the ledger could not record when their reply came, kept and retried until recorded.

A door that cannot ask its peer to send a reply again (the FreeSWITCH chatplan: the MESSAGE was
fired as an event, there is nothing to refuse) keeps the reply here: a bounded queue, retried in
order with the shared backoff, each attempt logged. With a spool (``OptOutSpool``, serve's default:
in the audit spool's directory) each reply is on disk before ``keep`` returns and what an earlier
process left is queued again at start, so a restart loses none. The reply keeps the time it came
(``Message.received_at``), so the withdrawal's evidence says when the subscriber opted out. Past
``max_pending`` replies, or the spool's bytes, a reply is logged ``messages.opt_out_lost`` and
counted in ``lost``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque

import structlog

from dncgate.backoff import Backoff
from dncgate.errors import MessageError
from dncgate.messages.model import Message
from dncgate.messages.opt_out_spool import OptOutSpool
from dncgate.messages.service import MessageService
from dncgate.store.errors import StoreError

log = structlog.get_logger("dncgate.messages.retry")
MAX_PENDING_OPT_OUTS = 10_000  # replies waiting for the ledger; past it a reply is logged as lost


class OptOutRetries:
    def __init__(self, service: MessageService, *, max_pending: int = MAX_PENDING_OPT_OUTS,
                 backoff: Backoff | None = None, spool: OptOutSpool | None = None) -> None:
        self.service = service
        self.max_pending = max_pending
        self.backoff = backoff or Backoff()
        self.spool = spool
        self.lost = 0  # replies neither recorded nor kept (the queue full)
        self.not_durable = 0  # replies kept in memory only (the spool full or failing)
        self._queue: deque[tuple[str, Message]] = deque(spool.pending if spool else ())
        self._wake = asyncio.Event()
        self.drained = asyncio.Event()  # set while nothing waits for the ledger
        if not self._queue:
            self.drained.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def keep(self, message: Message) -> bool:
        """Queue ``message`` (a reply whose opt-out was not recorded); False when the queue is full."""
        key = uuid.uuid4().hex
        if len(self._queue) >= self.max_pending:
            self.lost += 1
            log.error("messages.opt_out_lost", sender=message.sender[:64], recipient=message.recipient[:64],
                      pending=len(self._queue), reason="queue_full", lost=self.lost)
            return False
        if self.spool is not None and not self.spool.append(key, message):
            # The spool is full or cannot be written: the reply is still retried from memory (a
            # restart before it is recorded loses it), never dropped while the queue has room.
            self.not_durable += 1
            log.error("messages.opt_out_not_durable", sender=message.sender[:64], recipient=message.recipient[:64],
                      pending=len(self._queue), not_durable=self.not_durable)
        self._queue.append((key, message))
        self.drained.clear()
        self._wake.set()
        log.warning("messages.opt_out_queued", sender=message.sender[:64], recipient=message.recipient[:64],
                    pending=len(self._queue))
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: record the queued opt-outs, oldest first, backing off while the ledger fails."""
        failures = 0
        while not stop.is_set():
            if not self._queue:
                self._wake.clear()
                await _first(self._wake, stop, None)
                continue
            key, message = self._queue[0]
            try:
                await self.service.handle(message, log)
            except StoreError as exc:
                failures += 1
                log.warning("messages.opt_out_retry_failed", error=str(exc), attempt=failures,
                            pending=len(self._queue))
                await _first(stop, stop, self.backoff.delay(failures - 1))
                continue
            except MessageError as exc:  # cannot happen for a reply that was read once; never a loop
                log.error("messages.opt_out_lost", error=str(exc), reason="unreadable")
            else:
                log.info("messages.opt_out_recorded_late", sender=message.sender[:64], attempts=failures + 1)
            failures = 0
            self._queue.popleft()
            if self.spool is not None:
                self.spool.done(key)
            if not self._queue:
                self.drained.set()


async def _first(event: asyncio.Event, stop: asyncio.Event, timeout: float | None) -> None:
    """Until ``event`` or ``stop`` is set, or ``timeout`` seconds passed."""
    waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
