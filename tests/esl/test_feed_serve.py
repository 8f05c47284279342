"""``dncgate serve`` with ``[esl_feed]``: the FreeSWITCH call feed against the recorded 8021 session.

A fake FreeSWITCH replays the recorded inbound session (tests/fixtures/esl/inbound_8021.txt) on
every connection, plus one event the feed cannot read; the first connection then closes, as a
restarting FreeSWITCH would. The record is published on the gate's stream, the feed's state and
counters show in /healthz and /metrics, and it reconnects.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from esl_helpers import transcript_steps
from fake_freeswitch import rx_steps

from dncgate.events import CallRecord
from tests.conftest import serving
from tests.feed_serving import feed_config, healthz, metric_lines

CALL = "e2d51d18-227a-4ad4-8d2e-ca67a6320381"
_UNREADABLE = json.dumps({"Event-Name": "CHANNEL_CREATE", "Unique-ID": "u-bad",
                          "Event-Date-Timestamp": "99999999999999999999"}).encode()
UNREADABLE = b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(_UNREADABLE), _UNREADABLE)


class ReplayingFreeswitch:
    """Connection ``n`` waits for ``admit[n]`` (the last one for later connections), then replays."""

    def __init__(self, connections: int) -> None:
        blocks = rx_steps("inbound_8021")
        self.greeting, self.accepted, self.subscribed = blocks[0], blocks[1], blocks[2]
        self.events = [b for b in blocks if b"text/event-json" in b and b"BACKGROUND_JOB" not in b]
        self.admit = [asyncio.Event() for _ in range(connections)]
        self.received: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._peer, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = self.connections
        self.connections += 1
        try:
            await self.admit[min(n, len(self.admit) - 1)].wait()
            writer.write(self.greeting)
            self.received.append(await reader.readuntil(b"\n\n"))
            writer.write(self.accepted)
            self.received.append(await reader.readuntil(b"\n\n"))
            writer.write(self.subscribed)
            for block in (*self.events, UNREADABLE):
                writer.write(block)
            await writer.drain()
            if n > 0:
                await reader.read()  # stays up until the gate leaves
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def assert_recorded_call(record: CallRecord) -> None:
    assert (record.switch, record.call_id, record.originator, record.callee) == (
        "freeswitch", CALL, "2125550100", "5551002")
    assert (record.hangup_cause, record.hangup_cause_name, record.billsec) == (16, "NORMAL_CLEARING", 2)
    assert record.answer is not None
    assert record.start <= record.answer < record.end


async def test_records_state_disconnect_and_reconnect(tmp_path: Path) -> None:
    freeswitch = ReplayingFreeswitch(connections=2)
    port = await freeswitch.start()
    table = f'[esl_feed]\nenabled = true\nport = {port}\npassword = "ClueCon"\nconnect_deadline_s = 30\n'
    try:
        async with serving(feed_config(tmp_path, table)) as running:
            assert running.feeds is not None
            feed = running.feeds.feeds["esl_feed"]
            records = running.calls.subscribe()
            first = asyncio.ensure_future(anext(records))
            await asyncio.sleep(0)  # the subscription exists once the generator has started
            status, body = await healthz(running.http_port)
            assert (status, body["status"], body["feeds"]["esl_feed"]["state"]) == (200, "ok", "connecting")

            freeswitch.admit[0].set()
            assert_recorded_call(await asyncio.wait_for(first, 10))
            await asyncio.wait_for(feed.wait_for(lambda f: f.state == "down"), 10)  # it closed after the events
            recorded = [s.data for s in transcript_steps("inbound_8021") if s.direction == "tx"]
            assert freeswitch.received == [recorded[0], recorded[1].replace(b"\n\n", b" HEARTBEAT\n\n")]

            status, body = await healthz(running.http_port)
            assert (status, body["status"]) == (200, "ok")  # the call path does not need the feed
            esl = body["feeds"]["esl_feed"]
            assert (esl["state"], esl["address"]) == ("down", f"127.0.0.1:{port}")
            assert "closed the connection" in esl["last_error"]
            assert (esl["records"], esl["bad_events"], esl["connects"], esl["reconnects"]) == (1, 1, 1, 0)
            assert esl["last_event"] is not None
            assert await metric_lines(running.http_port, "dncgate_feed_") >= {
                'dncgate_feed_up{feed="esl_feed"} 0.0', 'dncgate_feed_records_total{feed="esl_feed"} 1.0',
                'dncgate_feed_bad_events_total{feed="esl_feed"} 1.0'}

            freeswitch.admit[1].set()  # FreeSWITCH is back: the feed reconnects and replays again
            assert_recorded_call(await asyncio.wait_for(anext(records), 30))
            await records.aclose()
            await asyncio.wait_for(feed.wait_for(lambda f: f.state == "connected"), 10)
            _, body = await healthz(running.http_port)
            esl = body["feeds"]["esl_feed"]
            assert (esl["state"], esl["connects"], esl["reconnects"], esl["records"]) == ("connected", 2, 1, 2)
            assert esl["last_error"] is None
            assert await metric_lines(running.http_port, "dncgate_feed_") >= {
                'dncgate_feed_up{feed="esl_feed"} 1.0', 'dncgate_feed_reconnects_total{feed="esl_feed"} 1.0',
                'dncgate_feed_records_total{feed="esl_feed"} 2.0'}
            assert "dncgate_call_records_dropped_total 0.0" in await metric_lines(running.http_port, "dncgate_call")
        assert freeswitch.connections == 2
    finally:
        freeswitch.close()


async def test_a_refused_password_is_shown_and_retried(tmp_path: Path) -> None:
    attempts: list[bytes] = []
    retried = asyncio.Event()

    async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"Content-Type: auth/request\n\n")
            attempts.append(await reader.readuntil(b"\n\n"))
            writer.write(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
            await writer.drain()
            if len(attempts) == 2:
                retried.set()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(refusing, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        table = f'[esl_feed]\nenabled = true\nport = {port}\npassword = "wrong"\n'
        async with serving(feed_config(tmp_path, table)) as running:
            assert running.feeds is not None
            await asyncio.wait_for(retried.wait(), 30)  # a wrong password can be fixed on the switch: keep trying
            status, body = await healthz(running.http_port)
            esl = body["feeds"]["esl_feed"]
            assert (status, body["status"], esl["state"], esl["connects"]) == (200, "ok", "down", 0)
            assert "invalid" in esl["last_error"]
        assert attempts[:2] == [b"auth wrong\n\n"] * 2
    finally:
        server.close()


async def test_serve_stops_within_its_bound_while_both_feeds_are_stuck_connecting(tmp_path: Path) -> None:
    """A manager that never answers Login and an event socket that never greets, with long deadlines."""
    from dncgate.service import AUDIT_GRACE, SHUTDOWN_GRACE
    from tests.ami.ami_helpers import FakeAmi

    greeted = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeted.set()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    ami = FakeAmi(silent_login=True)
    await ami.start()
    tables = (f'[ami]\nenabled = true\nport = {ami.port}\nusername = "e2e"\nsecret = "e2epass"\n'
              "connect_timeout_s = 60\n\n"
              f"[esl_feed]\nenabled = true\nport = {server.sockets[0].getsockname()[1]}\nconnect_deadline_s = 60\n")
    try:
        async with serving(feed_config(tmp_path, tables), stop_within=SHUTDOWN_GRACE + AUDIT_GRACE) as running:
            await asyncio.wait_for(greeted.wait(), 10)
            assert running.feeds is not None
            assert {f.state for f in running.feeds.feeds.values()} == {"connecting"}
    finally:
        server.close()
        await ami.close()

