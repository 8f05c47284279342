"""The FreeSWITCH call feed: recorded 8021 dialogue and hangup-complete extracts -> CallRecord."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from esl_helpers import fixture_bytes, transcript_steps
from fake_freeswitch import rx_steps

from dncgate.esl import feed as feed_module
from dncgate.esl.codec import EslDecoder, Limits
from dncgate.esl.errors import EslConnectionClosed
from dncgate.esl.feed import EslCallFeed, record_from_hangup, run_esl_feed
from dncgate.esl.inbound import InboundConfig
from dncgate.esl.messages import Event, Headers
from dncgate.events import CallEventStream, CallRecord

CALL = "e2d51d18-227a-4ad4-8d2e-ca67a6320381"


def decode(data: bytes) -> list[Event]:
    return [m.event for m in EslDecoder(Limits()).feed(data) if m.event is not None]


def extract(name: str) -> Event:
    (event,) = decode(fixture_bytes(name))
    return event


def at(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def test_json_hangup_complete_of_an_answered_bridged_call() -> None:
    record = record_from_hangup(extract("extract_hangup_complete_json_5551001.txt"))
    assert record == CallRecord(
        switch="freeswitch",
        call_id="0826c9db-a99a-4bee-a85a-5f0f8b4fec17",
        originator="2125550100",
        account="",
        callee="5551001",
        start=at(1795809398514459),
        answer=at(1795809398534479),
        end=at(1795809400574474),
        billsec=2,
        hangup_cause=16,
        hangup_cause_name="NORMAL_CLEARING",
        sip_code=200,
    )


def test_plain_hangup_complete_of_a_rejected_call() -> None:
    event = extract("extract_hangup_complete_plain_5550001.txt")
    assert event.headers.duplicates["Hangup-Cause"] == ("CALL_REJECTED", "CALL_REJECTED")
    record = record_from_hangup(event)
    assert (record.callee, record.answer, record.billsec) == ("5550001", None, 0)
    assert (record.hangup_cause, record.hangup_cause_name) == (21, "CALL_REJECTED")
    assert record.sip_code is None  # FreeSWITCH refused it itself and reports no status
    assert record.start == at(1795809367674481)
    assert record.end == at(1795809370274469)


def test_refused_by_the_gate_reports_the_code_it_sent() -> None:
    event = extract("extract_hangup_complete_plain_5550001.txt")
    pairs = [*event.headers.pairs, ("variable_dncgate_verdict", "reject"), ("variable_dncgate_sip_code", "607"),
             ("variable_dncgate_callee", "2015550123")]
    record = record_from_hangup(Event(event.format, Headers(pairs)))
    assert record.sip_code == 607
    assert record.callee == "2015550123"  # the checked number, not the continuation extension


def test_unwanted_has_no_q850_value() -> None:
    event = extract("extract_hangup_complete_plain_5550001.txt")
    pairs = [(k, v) for k, v in event.headers.pairs if k not in {"variable_hangup_cause", "variable_hangup_cause_q850"}]
    pairs = [(k, "UNWANTED" if k == "Hangup-Cause" else v) for k, v in pairs]
    record = record_from_hangup(Event(event.format, Headers([*pairs, ("variable_hangup_cause_q850", "16")])))
    assert (record.hangup_cause, record.hangup_cause_name) == (16, "UNWANTED")


def test_sip_code_from_proto_specific_cause() -> None:
    event = extract("extract_hangup_complete_json_5551001.txt")
    pairs = [(k, v) for k, v in event.headers.pairs if k != "variable_sip_term_status"]
    pairs = [(k, "sip:486" if k == "variable_proto_specific_hangup_cause" else v) for k, v in pairs]
    assert record_from_hangup(Event(event.format, Headers(pairs))).sip_code == 486


def test_interim_values_are_ignored_and_the_hangup_decides() -> None:
    """Only CHANNEL_HANGUP_COMPLETE publishes; create/answer only fill missing timestamps."""
    stream = CallEventStream()
    feed = EslCallFeed(stream)
    created = Event("json", Headers([("Event-Name", "CHANNEL_CREATE"), ("Unique-ID", "u1"),
                                     ("Event-Date-Timestamp", "1795809000000000")]))
    progress = Event("json", Headers([("Event-Name", "CHANNEL_PROGRESS"), ("Unique-ID", "u1"),
                                      ("variable_DIALSTATUS", "INVALIDARGS")]))
    answered = Event("json", Headers([("Event-Name", "CHANNEL_ANSWER"), ("Unique-ID", "u1"),
                                      ("Event-Date-Timestamp", "1795809001000000")]))
    hangup = Event("json", Headers([("Event-Name", "CHANNEL_HANGUP_COMPLETE"), ("Unique-ID", "u1"),
                                    ("Hangup-Cause", "NORMAL_CLEARING"), ("Event-Date-Timestamp", "1795809011000000"),
                                    ("Caller-Destination-Number", "5551002"), ("variable_sip_term_status", "200")]))
    assert feed.on_event(created) is None
    assert feed.on_event(progress) is None
    assert feed.on_event(answered) is None
    assert feed.pending == 1
    record = feed.on_event(hangup)
    assert record is not None
    assert (record.start, record.answer, record.end) == (at(1795809000000000), at(1795809001000000),
                                                          at(1795809011000000))
    assert (record.billsec, record.hangup_cause, record.sip_code) == (10, 16, 200)
    assert feed.pending == 0
    assert stream.published == 1


def test_pending_legs_are_bounded() -> None:
    feed = EslCallFeed(CallEventStream(), max_pending=3)
    for i in range(10):
        feed.on_event(Event("json", Headers([("Event-Name", "CHANNEL_CREATE"), ("Unique-ID", f"u{i}")])))
    assert (feed.pending, feed.evicted) == (3, 7)


@pytest.mark.parametrize("stamp", ["99999999999999999999", "\u00b2", "-5"])
def test_a_bad_timestamp_is_counted_not_raised(stamp: str) -> None:
    feed = EslCallFeed(CallEventStream())
    for name in ("CHANNEL_CREATE", "CHANNEL_ANSWER"):
        event = Event("json", Headers([("Event-Name", name), ("Unique-ID", "u1"), ("Event-Date-Timestamp", stamp)]))
        assert feed.on_event(event) is None
    assert feed.bad_events == (2 if stamp.startswith("9") else 0)  # the others read as "no time"
    hangup = extract("extract_hangup_complete_json_5551001.txt")  # the feed carries on with the next call
    assert feed.on_event(hangup) is not None


async def test_a_silent_feed_connection_is_dropped_and_reconnected(monkeypatch: pytest.MonkeyPatch) -> None:
    """No event (not even FreeSWITCH's 20 s HEARTBEAT) for the silence deadline: reconnect."""
    monkeypatch.setattr(feed_module, "FEED_SILENCE_DEADLINE", 0.2)  # the default applies: no event_deadline given
    connects: list[bytes] = []

    async def silent_freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"Content-Type: auth/request\n\n")
            await reader.readuntil(b"\n\n")
            writer.write(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
            connects.append(await reader.readuntil(b"\n\n"))
            writer.write(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled json\n\n")
            await reader.read()  # then nothing, as on a half-open connection
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(silent_freeswitch, "127.0.0.1", 0)
    config = InboundConfig(port=int(server.sockets[0].getsockname()[1]), connect_deadline=1, command_deadline=0.5)
    feed = asyncio.create_task(run_esl_feed(CallEventStream(), config, sleep=lambda _: asyncio.sleep(0)))
    try:
        async with asyncio.timeout(30):
            while len(connects) < 2:  # noqa: ASYNC110 - polling what the fake server saw
                await asyncio.sleep(0.02)
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
        server.close()
    assert connects[:2] == [b"event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE HEARTBEAT\n\n"] * 2


@contextlib.asynccontextmanager
async def replaying_freeswitch(received: list[bytes]) -> AsyncIterator[int]:
    """The recorded 8021 session: auth, subscription, then the recorded channel events."""
    steps = transcript_steps("inbound_8021")
    blocks = rx_steps("inbound_8021")
    events = [b for b in blocks if b"text/event-json" in b and b"BACKGROUND_JOB" not in b]

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(blocks[0])  # auth/request
            received.append(await reader.readuntil(b"\n\n"))
            writer.write(blocks[1])  # +OK accepted
            received.append(await reader.readuntil(b"\n\n"))
            writer.write(blocks[2])  # +OK event listener enabled json
            for block in events:
                writer.write(block)
            await writer.drain()
        finally:
            writer.close()

    assert steps[1].data == b"auth ClueCon\n\n"
    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def test_feed_over_the_recorded_inbound_session() -> None:
    stream = CallEventStream()
    records = stream.subscribe()
    first = asyncio.create_task(anext(records))
    await asyncio.sleep(0)  # the subscription exists once the generator has started
    received: list[bytes] = []
    async with replaying_freeswitch(received) as port:
        config = InboundConfig(port=port, connect_deadline=30, command_deadline=30, event_deadline=30)
        with pytest.raises(EslConnectionClosed, match="gave up"):
            await run_esl_feed(stream, config, max_attempts=0)
    recorded = [s.data for s in transcript_steps("inbound_8021") if s.direction == "tx"]
    assert received[0] == recorded[0]  # auth ClueCon
    # the recorded subscription (event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE) + HEARTBEAT
    assert received[1] == recorded[1].replace(b"\n\n", b" HEARTBEAT\n\n")
    record = await asyncio.wait_for(first, 30)
    await records.aclose()
    assert record.call_id == CALL
    assert record.originator == "2125550100"  # the Orig- caller ID; FreeSWITCH swaps them on answer
    assert record.callee == "5551002"
    assert (record.hangup_cause, record.hangup_cause_name, record.billsec) == (16, "NORMAL_CLEARING", 2)
    assert record.answer is not None
    assert record.start <= record.answer < record.end
    assert stream.published == 1
