"""Turn Asterisk AMI channel events into one :class:`~dncgate.events.CallRecord` per finished call.

A call is keyed by its ``Linkedid``: the ``Uniqueid`` of the calling leg (the first channel of the
call). Per call the tracker takes

* ``Newchannel`` of the calling leg: originator (CallerIDNum), account (AccountCode), callee (Exten),
  start;
* ``DialBegin``: callee if the calling leg's Exten was empty or ``s`` (DestExten, else DialString);
* ``DialEnd`` ``DialStatus: ANSWER`` or ``Newstate`` Up of the calling leg: answer time;
* ``Hangup`` of the calling leg: end, Q.850 ``Cause`` (name via :func:`cause_name`) and, on PJSIP,
  ``TechCause`` (the SIP code, e.g. 603 after ``PJSIPHangup(603)``);
* ``Cdr`` (cdr_manager; ``unanswered=yes`` in cdr.conf for unanswered calls): Destination, and the
  switch's own StartTime/AnswerTime/EndTime/BillableSeconds, which then win over event times.

Asterisk 22 sends the ``Cdr`` *after* the calling leg's Hangup for a call that ended in the dialplan
(the rejected call) but *before* it for a bridged call (the completed one). So a record is emitted
once both are in; if only one arrives, ``grace`` seconds later. A switch without cdr_manager still
yields records (from event times); a Cdr whose Hangup never comes yields a cause guessed from its
Disposition. Event times are the ``Timestamp`` header (manager.conf ``timestampevents=yes``) or our
clock at receipt; Cdr times are the switch's local time, read in ``cdr_timezone``.

Memory is bounded: at most ``max_calls`` in flight (the oldest is evicted) and none older than
``ttl`` seconds; evictions are logged as ``ami.calls.evicted``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Protocol

import structlog

from dncgate.ami.causes import DISPOSITION_CAUSES, cause_name
from dncgate.ami.message import AmiMessage
from dncgate.ami.settings import TrackerSettings
from dncgate.events import CallEventStream, CallRecord

__all__ = ["CallTracker", "TrackerSettings"]

_UNKNOWN = ("", "<unknown>")
_CDR_TIME = "%Y-%m-%d %H:%M:%S"


class _Listens(Protocol):
    def add_listener(self, listener: Callable[[AmiMessage], None]) -> Callable[[], None]: ...


@dataclass(slots=True)
class _Call:
    call_id: str
    created: float  # monotonic
    originator: str = ""
    account: str = ""
    callee: str = ""
    start: datetime | None = None
    answer: datetime | None = None
    end: datetime | None = None
    cause: int | None = None
    cause_txt: str = ""
    sip_code: int | None = None
    cdr: AmiMessage | None = None
    legs: set[str] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


class CallTracker:
    """Feed it AMI events (:meth:`feed`, or :meth:`attach` to an :class:`AmiClient`); it publishes records."""

    def __init__(
        self,
        stream: CallEventStream,
        settings: TrackerSettings | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.settings = settings or TrackerSettings()
        self._clock = clock
        self._monotonic = monotonic
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._legs: dict[str, str] = {}  # other legs' Uniqueid -> call id
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._log = structlog.get_logger("dncgate.ami.calls")
        self.emitted = 0
        self.evicted = 0

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    def attach(self, client: _Listens) -> Callable[[], None]:
        return client.add_listener(self.feed)

    # ------------------------------------------------------------------ events
    def feed(self, event: AmiMessage) -> None:
        name = event.event
        if name == "Cdr":
            self._on_cdr(event)
            return
        if name not in ("Newchannel", "DialBegin", "DialEnd", "Newstate", "Hangup"):
            return
        uid, linked = event.get("Uniqueid"), event.get("Linkedid") or event.get("Uniqueid")
        if not uid:
            return
        calling_leg = uid == linked
        call = self._calls.get(linked)
        if call is None:
            if not calling_leg or linked in self._finished:
                return  # a leg of a call we never saw start, or a late event of a finished call
            call = self._open(linked, event)
        elif not calling_leg and uid not in call.legs:
            call.legs.add(uid)
            self._legs[uid] = call.call_id
        if name == "DialBegin":
            if call.callee in ("", "s"):
                call.callee = event.get("DestExten") or event.get("DialString") or call.callee
            dest = event.get("DestUniqueid")
            if dest and dest != call.call_id:
                call.legs.add(dest)
                self._legs[dest] = call.call_id
        elif name == "DialEnd":
            if event.get("DialStatus") == "ANSWER" and call.answer is None:
                call.answer = self._event_time(event)
        elif name == "Newstate":
            if calling_leg and event.get("ChannelStateDesc") == "Up" and call.answer is None:
                call.answer = self._event_time(event)
        elif name == "Hangup":
            if calling_leg:
                self._on_hangup(call, event)
            else:
                call.legs.discard(uid)
                self._legs.pop(uid, None)

    def _open(self, call_id: str, event: AmiMessage) -> _Call:
        self.sweep()
        while len(self._calls) >= self.settings.max_calls:
            self._evict(next(iter(self._calls.values())), "capacity")
        call = _Call(call_id, self._monotonic())
        call.originator = _known(event.get("CallerIDNum"))
        call.account = event.get("AccountCode")
        call.callee = _known(event.get("Exten"))
        call.start = self._event_time(event) if event.event == "Newchannel" else _uniqueid_time(call_id)
        self._calls[call_id] = call
        return call

    def _on_hangup(self, call: _Call, event: AmiMessage) -> None:
        call.end = self._event_time(event)
        call.cause = _int(event.get("Cause"))
        call.cause_txt = event.get("Cause-txt")
        tech = _int(event.get("TechCause"))
        call.sip_code = tech if tech is not None and 100 <= tech <= 699 else None
        self._progress(call)

    def _on_cdr(self, event: AmiMessage) -> None:
        uid = event.get("UniqueID")
        call_id = uid if uid in self._calls else self._legs.get(uid, "")
        call = self._calls.get(call_id)
        if call is None:
            self._log.debug("ami.calls.cdr_unmatched", unique_id=uid, finished=uid in self._finished)
            return
        if call.cdr is None:  # the first Cdr of a call is its record; later ones (forks) are ignored
            call.cdr = event
        self._progress(call)

    def _progress(self, call: _Call) -> None:
        if call.cause is not None and call.cdr is not None:
            self._emit(call)
        elif call.timer is None:
            call.timer = asyncio.get_running_loop().call_later(self.settings.grace, self._grace_over, call.call_id)

    def _grace_over(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.timer = None
            self._emit(call)

    # ------------------------------------------------------------------ records
    def _emit(self, call: _Call) -> None:
        self._forget(call)
        self._finished[call.call_id] = None
        while len(self._finished) > self.settings.remember_finished:
            self._finished.popitem(last=False)
        record = self._record(call)
        self.emitted += 1
        self._log.debug("ami.calls.emitted", call_id=call.call_id, cause=record.hangup_cause, cdr=call.cdr is not None)
        self.stream.publish(record)

    def _record(self, call: _Call) -> CallRecord:
        start, answer, end, callee, account = call.start, call.answer, call.end, call.callee, call.account
        billsec: int | None = None
        cdr = call.cdr
        if cdr is not None:
            tz = self.settings.cdr_timezone
            cdr_start, cdr_end = _cdr_time(cdr.get("StartTime"), tz), _cdr_time(cdr.get("EndTime"), tz)
            if cdr_start is not None and cdr_end is not None:  # one clock for all three: the switch's
                start, end, answer = cdr_start, cdr_end, _cdr_time(cdr.get("AnswerTime"), tz)
            billsec = _int(cdr.get("BillableSeconds"))
            callee = cdr.get("Destination") or callee
            account = account or cdr.get("AccountCode")
        end = end or self._clock()
        start = start or end
        if billsec is None:
            billsec = max(0, int((end - answer).total_seconds())) if answer is not None else 0
        if call.cause is not None:
            cause, name = call.cause, cause_name(call.cause, call.cause_txt)
        else:  # Cdr without a Hangup: infer from its Disposition
            cause = DISPOSITION_CAUSES.get(cdr.get("Disposition") if cdr is not None else "", 0)
            name = cause_name(cause)
        originator = call.originator or (_known(cdr.get("Source")) if cdr is not None else "")
        return CallRecord(
            switch=self.settings.switch,
            call_id=call.call_id,
            originator=originator,
            account=account,
            callee=callee,
            start=start,
            answer=answer,
            end=end,
            billsec=billsec,
            hangup_cause=cause,
            hangup_cause_name=name,
            sip_code=call.sip_code,
        )

    # ------------------------------------------------------------------ memory
    def sweep(self) -> int:
        """Evict calls in flight longer than ``ttl``; returns how many."""
        limit = self._monotonic() - self.settings.ttl
        count = 0
        while self._calls:
            oldest = next(iter(self._calls.values()))
            if oldest.created > limit:
                break
            self._evict(oldest, "ttl")
            count += 1
        return count

    def _evict(self, call: _Call, reason: str) -> None:
        self._forget(call)
        self.evicted += 1
        self._log.warning(
            "ami.calls.evicted",
            call_id=call.call_id,
            reason=reason,
            age_s=round(self._monotonic() - call.created, 3),
            in_flight=len(self._calls),
        )

    def _forget(self, call: _Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        self._calls.pop(call.call_id, None)
        for leg in call.legs:
            self._legs.pop(leg, None)

    def flush(self) -> int:
        """Emit every call that has ended (Hangup or Cdr seen) without waiting for its grace timer."""
        ready = [c for c in self._calls.values() if c.cause is not None or c.cdr is not None]
        for call in ready:
            self._emit(call)
        return len(ready)

    def close(self) -> None:
        """Emit what has ended, cancel timers and drop the rest."""
        self.flush()
        for call in list(self._calls.values()):
            self._forget(call)

    def _event_time(self, event: AmiMessage) -> datetime:
        stamp = event.get("Timestamp")
        if stamp:
            try:
                return datetime.fromtimestamp(float(stamp), UTC)
            except (ValueError, OverflowError, OSError):
                pass
        return self._clock()


def _known(value: str) -> str:
    return "" if value in _UNKNOWN else value


def _int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def _cdr_time(value: str, tz: tzinfo) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.strptime(value, _CDR_TIME).replace(tzinfo=tz)
    except ValueError:
        return None


def _uniqueid_time(uniqueid: str) -> datetime | None:
    """A Uniqueid is ``[systemname-]<epoch seconds>.<sequence>``: the channel's creation second."""
    seconds = uniqueid.rpartition("-")[2].partition(".")[0]
    try:
        return datetime.fromtimestamp(int(seconds), UTC)
    except (ValueError, OverflowError, OSError):
        return None
