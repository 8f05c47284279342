"""FreeSWITCH call feed: inbound event socket -> one :class:`~dncgate.events.CallRecord` per leg.

Subscribes (json) to CHANNEL_CREATE, CHANNEL_ANSWER and CHANNEL_HANGUP_COMPLETE through
:func:`~dncgate.esl.inbound.stream_events` (reconnects with backoff) and publishes a record to a
:class:`~dncgate.events.CallEventStream` when a leg's CHANNEL_HANGUP_COMPLETE arrives.

Only the values in CHANNEL_HANGUP_COMPLETE are final: it carries the leg's timestamps
(``variable_start_uepoch`` / ``answer_uepoch`` / ``end_uepoch``), ``variable_billsec``, the
hangup cause and the SIP status.  Values seen earlier (bridge variables during progress such as
DIALSTATUS=INVALIDARGS) are interim and ignored.  CHANNEL_CREATE / CHANNEL_ANSWER only supply
timestamps when the hangup event lacks them.

SIP code: ``variable_sip_term_status`` (the final status on this leg's dialog), else
``variable_proto_specific_hangup_cause`` (``sip:NNN``).  FreeSWITCH sets neither on an inbound
leg it refused itself (``sip_hangup_disposition=send_refuse``); when the gate's handler refused
it, ``dncgate_sip_code`` is the code it sent and is used.

Hangup cause: the name (``variable_hangup_cause``, else the first ``Hangup-Cause``) and
``variable_hangup_cause_q850``.  FreeSWITCH's own causes above 127 have no Q.850 value and it
reports 16 for them (UNWANTED, FreeSWITCH cause 819, is reported as 16 with the name UNWANTED).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from dncgate.esl.inbound import BackoffPolicy, InboundClient, InboundConfig, stream_events
from dncgate.esl.messages import Event
from dncgate.events import CallEventStream, CallRecord

__all__ = ["FEED_EVENTS", "EslCallFeed", "feed_inbound_config", "record_from_hangup", "run_esl_feed"]

FEED_EVENTS: tuple[str, ...] = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")
# FreeSWITCH sends HEARTBEAT every 20 s (switch.conf event-heartbeat-interval): a feed that hears
# nothing for this long is on a dead (half-open) connection and reconnects.
FEED_SILENCE_DEADLINE = 60.0

log = structlog.get_logger("dncgate.esl.feed")

# Q.850 values of the names FreeSWITCH reports, for events without variable_hangup_cause_q850.
_Q850 = {
    "UNALLOCATED_NUMBER": 1, "NO_ROUTE_DESTINATION": 3, "NORMAL_CLEARING": 16, "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22, "DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28,
    "NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42, "OUTGOING_CALL_BARRED": 52,
    "INCOMING_CALL_BARRED": 54, "RECOVERY_ON_TIMER_EXPIRE": 102, "INTERWORKING": 127,
}


def _micros(value: str | None) -> datetime | None:
    """FreeSWITCH microsecond epoch timestamps; ``0`` or missing means "never"."""
    if not value or not (value.isascii() and value.isdigit()) or int(value) == 0:
        return None
    return datetime.fromtimestamp(int(value) / 1_000_000, UTC)


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _sip_code(event: Event) -> int | None:
    status = _int(event.variable("sip_term_status"))
    if status is not None and 100 <= status <= 699:
        return status
    proto = (event.variable("proto_specific_hangup_cause") or "").lower()
    if proto.startswith(("sip:", "sips:")):
        code = _int(proto.split(":", 1)[1])
        if code is not None and 100 <= code <= 699:
            return code
    if event.variable("sip_hangup_disposition") == "send_refuse" and event.variable("dncgate_verdict") == "reject":
        code = _int(event.variable("dncgate_sip_code"))
        if code is not None and 300 <= code <= 699:
            return code
    return None


def record_from_hangup(event: Event, created: datetime | None = None, answered: datetime | None = None) -> CallRecord:
    """The final record of one leg from its CHANNEL_HANGUP_COMPLETE (json or plain)."""
    get, var = event.get, event.variable
    end = (
        _micros(var("end_uepoch"))
        or _micros(get("Caller-Channel-Hangup-Time"))
        or _micros(get("Event-Date-Timestamp"))
        or datetime.now(UTC)
    )
    start = _micros(var("start_uepoch")) or _micros(get("Caller-Channel-Created-Time")) or created or end
    answer = _micros(var("answer_uepoch")) or _micros(get("Caller-Channel-Answered-Time")) or answered
    billsec = _int(var("billsec"))
    if billsec is None:
        billsec = int((end - answer).total_seconds()) if answer is not None else 0
    cause_name = var("hangup_cause") or event.hangup_cause or "NONE"
    q850 = _int(var("hangup_cause_q850"))
    return CallRecord(
        switch="freeswitch",
        call_id=event.unique_id or get("Caller-Unique-ID") or "",
        # On an answered outbound leg FreeSWITCH swaps caller and callee ID; the Orig- value stays.
        originator=get("Caller-Orig-Caller-ID-Number") or get("Caller-Caller-ID-Number") or "",
        account=var("accountcode") or var("dncgate_account") or "",
        # After the gate's transfer the destination is the continuation extension; the number
        # the gate checked is kept in dncgate_callee.
        callee=var("dncgate_callee") or get("Caller-Destination-Number") or var("destination_number") or "",
        start=start,
        answer=answer,
        end=end,
        billsec=billsec,
        hangup_cause=q850 if q850 is not None else _Q850.get(cause_name, 0),
        hangup_cause_name=cause_name,
        sip_code=_sip_code(event),
    )


class EslCallFeed:
    """Turns a stream of channel events into call records on ``stream``."""

    def __init__(self, stream: CallEventStream, *, max_pending: int = 100_000,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.stream = stream
        self.max_pending = max_pending
        self._clock = clock
        self.last_event_at: datetime | None = None  # any event, HEARTBEAT included: the feed is alive
        # Unique-ID -> [created, answered] from CHANNEL_CREATE / CHANNEL_ANSWER.
        self._pending: OrderedDict[str, list[datetime | None]] = OrderedDict()
        self.published = 0
        self.evicted = 0
        self.bad_events = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def on_event(self, event: Event) -> CallRecord | None:
        self.last_event_at = self._clock()
        name, uid = event.name, event.unique_id
        if not uid or name not in FEED_EVENTS:
            return None
        if name == "CHANNEL_HANGUP_COMPLETE":
            created, answered = self._pending.pop(uid, [None, None])
            try:
                record = record_from_hangup(event, created, answered)
            except (ValueError, OverflowError, OSError) as exc:
                self.bad_events += 1
                log.warning("esl.feed.bad_event", unique_id=uid, error=str(exc))
                return None
            self.stream.publish(record)
            self.published += 1
            log.debug("esl.feed.record", call_id=record.call_id, cause=record.hangup_cause_name,
                      sip_code=record.sip_code, billsec=record.billsec)
            return record
        try:
            at = _micros(event.get("Event-Date-Timestamp"))
        except (ValueError, OverflowError, OSError) as exc:
            self.bad_events += 1
            log.warning("esl.feed.bad_event", unique_id=uid, error=f"Event-Date-Timestamp: {exc}")
            return None
        times = self._pending.get(uid)
        if times is None:
            times = self._pending[uid] = [None, None]
            self._evict()
        if name == "CHANNEL_CREATE":
            times[0] = times[0] or at
        else:
            times[1] = times[1] or at
        return None

    def _evict(self) -> None:
        while len(self._pending) > self.max_pending:
            uid, _ = self._pending.popitem(last=False)
            self.evicted += 1
            log.warning("esl.feed.pending_evicted", unique_id=uid, evicted=self.evicted)

    async def consume(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            self.on_event(event)


def feed_inbound_config(base: InboundConfig) -> InboundConfig:
    """``base`` subscribed to :data:`FEED_EVENTS` and HEARTBEAT in json, with a silence deadline."""
    deadline = base.event_deadline if base.event_deadline is not None else FEED_SILENCE_DEADLINE
    return replace(base, events=(*FEED_EVENTS, "HEARTBEAT"), event_format="json", event_deadline=deadline)


async def run_esl_feed(
    stream: CallEventStream,
    config: InboundConfig | None = None,
    *,
    backoff: BackoffPolicy | None = None,
    max_attempts: int | None = None,
    client_factory: Callable[[], InboundClient] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    feed: EslCallFeed | None = None,
    on_state: Callable[[str, str], None] | None = None,
    retry_auth_errors: bool = False,
) -> EslCallFeed:
    """Connect to FreeSWITCH (8021), subscribe to :data:`FEED_EVENTS` in json and feed ``stream``.

    HEARTBEAT is subscribed too, and a connection silent for ``config.event_deadline`` (default
    :data:`FEED_SILENCE_DEADLINE`) is dropped and reconnected. ``feed`` (its counters) and
    ``on_state`` (connected / down, see :func:`stream_events`) let a caller watch it run.

    Runs until cancelled (or until ``max_attempts`` consecutive reconnects fail).
    """
    cfg = feed_inbound_config(config if config is not None else InboundConfig())
    feed = feed if feed is not None else EslCallFeed(stream)
    factory = client_factory if client_factory is not None else (lambda: InboundClient(cfg))
    events = stream_events(factory, backoff=backoff, max_attempts=max_attempts, sleep=sleep or asyncio.sleep,
                           on_state=on_state, retry_auth_errors=retry_auth_errors)
    await feed.consume(events)
    return feed
