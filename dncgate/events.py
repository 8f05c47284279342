"""One normalised call-event record for both switches, and the in-process stream that carries it.

The AMI feed (Asterisk) and the event-socket feed (FreeSWITCH) turn their switch's own events into
a :class:`CallRecord` when a call ends; the early-warning work consumes the stream. Subscribers get
a bounded queue each; a subscriber that falls behind loses the oldest records and the loss is
counted and logged, never blocking the feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import structlog

log = structlog.get_logger("dncgate.events")


@dataclass(frozen=True, slots=True)
class CallRecord:
    switch: str  # asterisk | freeswitch
    call_id: str  # Asterisk Uniqueid / FreeSWITCH Unique-ID of the calling leg
    originator: str  # caller ID number of the calling leg
    account: str  # account code / accountcode variable, "" if none
    callee: str  # the dialled destination, as the switch saw it
    start: datetime
    answer: datetime | None
    end: datetime
    billsec: int  # seconds from answer to end; 0 if never answered
    hangup_cause: int  # Q.850 cause code (16 normal clearing, 21 call rejected, ...)
    hangup_cause_name: str  # NORMAL_CLEARING, CALL_REJECTED, ...
    sip_code: int | None = None  # the final SIP response when the switch reports it

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("start", "answer", "end"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


class CallEventStream:
    """Fan-out of call records to any number of subscribers, each with a bounded buffer."""

    def __init__(self, buffer: int = 10_000) -> None:
        self._buffer = buffer
        self._subscribers: list[asyncio.Queue[CallRecord]] = []
        self.published = 0
        self.dropped = 0

    def publish(self, record: CallRecord) -> None:
        self.published += 1
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
                log.warning("events.subscriber_lagging", dropped=self.dropped, call_id=record.call_id)
            queue.put_nowait(record)

    def subscribe(self) -> AsyncGenerator[CallRecord, None]:
        """Records published from now on. Registered at once, before the first ``anext``;
        ``aclose()`` the iterator (or let it finish) to unsubscribe."""
        queue: asyncio.Queue[CallRecord] = asyncio.Queue(self._buffer)
        self._subscribers.append(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[CallRecord]) -> AsyncGenerator[CallRecord, None]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(queue)
