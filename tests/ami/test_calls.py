"""CallTracker fed the recorded Asterisk 22 events directly: orderings, grace timers, eviction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from structlog.testing import capture_logs

from dncgate.ami.calls import CallTracker
from dncgate.ami.causes import cause_name
from dncgate.ami.message import AmiMessage
from dncgate.ami.settings import TrackerSettings
from dncgate.events import CallEventStream, CallRecord
from tests.ami.ami_helpers import transcript_events
from tests.ami.test_client import COMPLETED, REJECTED
from tests.polls import poll_until

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


class Collect:
    """A CallEventStream whose publish() also records synchronously (no subscriber task needed)."""

    def __init__(self) -> None:
        self.stream = CallEventStream()
        self.records: list[CallRecord] = []
        publish = self.stream.publish

        def record(rec: CallRecord) -> None:
            self.records.append(rec)
            publish(rec)

        self.stream.publish = record  # type: ignore[method-assign]

    async def after_grace(self, count: int) -> list[CallRecord]:
        """The records once ``count`` are in: the grace timer fired (awaited, never slept for, so a
        busy machine cannot make the test look before it did: issue 11 item 20)."""
        await poll_until(lambda: len(self.records) >= count, f"{count} records after the grace")
        return self.records


def ticking_clock(start: datetime = T0, step: float = 1.0):  # type: ignore[no-untyped-def]
    state = {"n": 0}

    def clock() -> datetime:
        value = start + timedelta(seconds=step * state["n"])
        state["n"] += 1
        return value

    return clock


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(settings: TrackerSettings | None = None, **kwargs: object) -> tuple[CallTracker, Collect]:
    out = Collect()
    return CallTracker(out.stream, settings, **kwargs), out  # type: ignore[arg-type]


def event(name: str, **headers: str) -> AmiMessage:
    return AmiMessage.from_pairs([("Event", name), *((k.replace("_", "-"), v) for k, v in headers.items())])


def call_events(uid: str, *, cdr: bool = True, hangup: bool = True, cause: str = "16") -> list[AmiMessage]:
    chan = {"Uniqueid": uid, "Linkedid": uid, "CallerIDNum": "15550001111", "AccountCode": "acme"}
    chan["Exten"] = "18005550199"
    out = [event("Newchannel", **chan), event("DialEnd", DialStatus="ANSWER", **chan)]
    if hangup:
        out.append(event("Hangup", Cause=cause, Cause_txt="Normal Clearing", **chan))
    if cdr:
        out.append(
            event(
                "Cdr",
                UniqueID=uid,
                Destination="18005550199",
                StartTime="2030-01-01 12:00:00",
                AnswerTime="2030-01-01 12:00:02",
                EndTime="2030-01-01 12:00:09",
                BillableSeconds="7",
                Disposition="ANSWERED",
                AccountCode="acme",
            )
        )
    return out


async def test_transcript_yields_exact_records() -> None:
    tracker, out = make()
    for ev in transcript_events():
        tracker.feed(ev)
    assert out.records == [REJECTED, COMPLETED]  # both emitted at once: no grace timer needed
    assert tracker.in_flight == 0
    assert tracker.emitted == 2


async def test_transcript_without_cdr_uses_event_times_after_grace() -> None:
    tracker, out = make(TrackerSettings(grace=0.05), clock=ticking_clock())
    for ev in transcript_events():
        if ev.event != "Cdr":
            tracker.feed(ev)
    assert out.records == []  # waiting for a Cdr that will not come
    rejected, completed = await out.after_grace(2)
    # clock ticks: rejected Newchannel 0, Hangup 1; completed Newchannel 2, DialEnd ANSWER 3, Hangup 4
    assert rejected == CallRecord(
        "asterisk",
        "1795809201.22",
        "15551230000",
        "",
        "18005550100",
        T0,
        None,
        T0 + timedelta(seconds=1),
        0,
        21,
        "CALL_REJECTED",
        603,
    )
    assert completed == CallRecord(
        "asterisk",
        "1795809207.23",
        "15551230000",
        "",
        "18005550123",
        T0 + timedelta(seconds=2),
        T0 + timedelta(seconds=3),
        T0 + timedelta(seconds=4),
        1,
        16,
        "NORMAL_CLEARING",
        None,
    )


async def test_timestamp_header_wins_over_clock() -> None:
    tracker, out = make(TrackerSettings(grace=0.01), clock=lambda: T0)
    chan = {"Uniqueid": "9.1", "Linkedid": "9.1", "CallerIDNum": "1", "Exten": "2"}
    tracker.feed(event("Newchannel", Timestamp="1900000000.250000", **chan))
    tracker.feed(event("Newstate", ChannelStateDesc="Up", Timestamp="1900000001.500000", **chan))
    tracker.feed(event("Hangup", Cause="16", Timestamp="1900000004.000000", **chan))
    (rec,) = await out.after_grace(1)
    assert rec.start == datetime.fromtimestamp(1900000000.25, UTC)
    assert rec.answer == datetime.fromtimestamp(1900000001.5, UTC)
    assert rec.billsec == 2  # 2.5 s, floored


async def test_cdr_before_hangup_and_after_hangup_both_emit_once() -> None:
    tracker, out = make()
    a = call_events("1.1")
    b = call_events("2.1")
    for ev in a:  # Hangup, then Cdr
        tracker.feed(ev)
    for ev in [b[0], b[1], b[3], b[2]]:  # Cdr, then Hangup
        tracker.feed(ev)
    tracker.feed(a[3])  # a late duplicate Cdr
    tracker.feed(a[2])  # and a late Hangup
    assert [r.call_id for r in out.records] == ["1.1", "2.1"]
    rec = out.records[0]
    assert (rec.account, rec.billsec, rec.answer) == ("acme", 7, datetime(2030, 1, 1, 12, 0, 2, tzinfo=UTC))


async def test_cdr_times_read_in_the_switch_time_zone() -> None:
    tracker, out = make(TrackerSettings(cdr_timezone=timezone(timedelta(hours=2))))
    for ev in call_events("3.1"):
        tracker.feed(ev)
    assert out.records[0].start == datetime(2030, 1, 1, 10, 0, 0, tzinfo=UTC)


async def test_cdr_without_hangup_takes_cause_from_disposition() -> None:
    tracker, out = make(TrackerSettings(grace=0.02))
    for ev in call_events("4.1", hangup=False):
        tracker.feed(ev)
    (rec,) = await out.after_grace(1)
    assert (rec.hangup_cause, rec.hangup_cause_name, rec.sip_code, rec.billsec) == (16, "NORMAL_CLEARING", None, 7)


async def test_b_leg_events_and_unknown_calls_are_ignored() -> None:
    tracker, out = make()
    tracker.feed(event("Newchannel", Uniqueid="5.2", Linkedid="5.1"))  # leg of a call never seen
    tracker.feed(event("Hangup", Uniqueid="5.2", Linkedid="5.1", Cause="16"))
    tracker.feed(event("Cdr", UniqueID="5.9"))
    tracker.feed(event("BridgeEnter", Uniqueid="5.1", Linkedid="5.1"))
    assert tracker.in_flight == 0
    assert out.records == []


async def test_call_joined_mid_way_takes_start_from_uniqueid() -> None:
    tracker, out = make(TrackerSettings(grace=0.01), clock=lambda: T0)
    chan = {"Uniqueid": "pbx1-1900000000.7", "Linkedid": "pbx1-1900000000.7", "CallerIDNum": "<unknown>"}
    tracker.feed(event("Hangup", Cause="0", **chan))
    (rec,) = await out.after_grace(1)
    assert rec.start == datetime.fromtimestamp(1900000000, UTC)
    assert (rec.originator, rec.hangup_cause_name, rec.end) == ("", "NONE", T0)


async def test_b_leg_cdr_maps_to_its_call_and_dial_string_is_callee() -> None:
    tracker, out = make()
    a = {"Uniqueid": "6.1", "Linkedid": "6.1", "CallerIDNum": "100", "Exten": "s"}
    tracker.feed(event("Newchannel", **a))
    tracker.feed(event("DialBegin", DestUniqueid="6.2", DestExten="", DialString="200@trunk", **a))
    tracker.feed(event("Hangup", Cause="17", Cause_txt="User busy", TechCause="486", **a))
    tracker.feed(event("Cdr", UniqueID="6.2", StartTime="", EndTime="", BillableSeconds="0"))
    (rec,) = out.records
    assert (rec.callee, rec.hangup_cause_name, rec.sip_code, rec.answer) == ("200@trunk", "USER_BUSY", 486, None)


async def test_eviction_by_capacity_and_ttl_is_logged() -> None:
    mono = FakeMonotonic()
    tracker, out = make(TrackerSettings(max_calls=2, ttl=60.0), monotonic=mono)
    with capture_logs() as logs:
        for uid in ("7.1", "7.2", "7.3"):
            tracker.feed(event("Newchannel", Uniqueid=uid, Linkedid=uid))
        assert tracker.in_flight == 2
        mono.now += 61
        tracker.feed(event("Newchannel", Uniqueid="7.4", Linkedid="7.4"))
        assert tracker.in_flight == 1
        mono.now += 61
        assert tracker.sweep() == 1
    evictions = [(e["call_id"], e["reason"]) for e in logs if e["event"] == "ami.calls.evicted"]
    assert evictions == [("7.1", "capacity"), ("7.2", "ttl"), ("7.3", "ttl"), ("7.4", "ttl")]
    assert tracker.evicted == 4
    assert out.records == []
    # events of an evicted call's other legs do not resurrect it
    tracker.feed(event("Hangup", Uniqueid="7.9", Linkedid="7.2", Cause="16"))
    assert tracker.in_flight == 0


async def test_close_flushes_ended_calls_and_drops_the_rest() -> None:
    tracker, out = make(TrackerSettings(grace=30.0), clock=lambda: T0)
    for ev in call_events("8.1", cdr=False):
        tracker.feed(ev)
    tracker.feed(event("Newchannel", Uniqueid="8.2", Linkedid="8.2"))
    tracker.close()
    assert [r.call_id for r in out.records] == ["8.1"]
    assert tracker.in_flight == 0


@pytest.mark.parametrize(
    ("cause", "text", "name"),
    [
        (16, "Normal Clearing", "NORMAL_CLEARING"),
        (21, "Call Rejected", "CALL_REJECTED"),
        (200, "Odd cause", "ODD_CAUSE"),
        (201, "", "UNKNOWN"),
    ],
)
def test_cause_names(cause: int, text: str, name: str) -> None:
    assert cause_name(cause, text) == name
