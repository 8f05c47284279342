"""Inbound client: the recorded 8021 dialogue, auth failure, deadlines, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import structlog
from esl_helpers import Step, fixture_bytes, transcript_steps

from dncgate.esl.errors import AccessDeniedError, AuthError, EslConnectionClosed, EslTimeoutError
from dncgate.esl.inbound import Backoff, InboundClient, InboundConfig, stream_events
from dncgate.esl.messages import Event

AUTH_REQUEST = b"Content-Type: auth/request\n\n"
ACCEPTED = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
SUBSCRIBED = b"Content-Type: command/reply\nReply-Text: +OK event listener enabled json\n\n"
ORIGINATE = (
    "originate {origination_uuid=e2d51d18-227a-4ad4-8d2e-ca67a6320381,"
    "origination_caller_id_number=2125550100,origination_caller_id_name=esl-inbound}"
    "sofia/gateway/uas/5551002 &playback(tone_stream://%(1500,0,440))"
)

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_freeswitch(peer: Peer) -> AsyncIterator[int]:
    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await peer(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


def cfg(port: int, **kw: Any) -> InboundConfig:
    # deadlines the tests expect NOT to fire are long (issue 11 item 20); a test of a deadline sets it
    base: dict[str, Any] = {"port": port, "connect_deadline": 30.0, "command_deadline": 30.0, "event_deadline": 30.0}
    base.update(kw)
    return InboundConfig(**base)


def script_peer(steps: list[Step], received: bytearray) -> Peer:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for step in steps:
            if step.direction == "rx":
                writer.write(step.data)
                await writer.drain()
            else:
                received.extend(await asyncio.wait_for(reader.readexactly(len(step.data)), 30))
        received.extend(await asyncio.wait_for(reader.read(), 30))

    return peer


async def test_inbound_replay_matches_recorded_bytes() -> None:
    received = bytearray()
    names: list[str] = []
    async with fake_freeswitch(script_peer(transcript_steps("inbound_8021"), received)) as port:
        client = InboundClient(cfg(port))
        await client.connect()
        await client.subscribe(["BACKGROUND_JOB"])
        job = await client.bgapi(ORIGINATE, job_uuid="e3bbfe23-0303-46ed-ae93-5901d0a8e160")
        assert job == "e3bbfe23-0303-46ed-ae93-5901d0a8e160"
        background: Event | None = None
        async for event in client.events():
            names.append(event.name)
            if event.name == "BACKGROUND_JOB":
                background = event
            if event.name == "CHANNEL_HANGUP_COMPLETE":
                assert event.hangup_cause == "NORMAL_CLEARING"
                break
        await client.exit()
        assert not client.connected
    assert bytes(received) == fixture_bytes("inbound_8021.tx.raw")
    assert names == ["CHANNEL_CREATE", "CHANNEL_ANSWER", "BACKGROUND_JOB", "CHANNEL_HANGUP_COMPLETE"]
    assert background is not None
    assert background.job_uuid == job
    assert background.body == "+OK e2d51d18-227a-4ad4-8d2e-ca67a6320381\n"


async def test_wrong_password_is_auth_error() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AUTH_REQUEST)
        assert await reader.readuntil(b"\n\n") == b"auth wrong\n\n"
        writer.write(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
        await writer.drain()
        await reader.read()

    async with fake_freeswitch(peer) as port:
        client = InboundClient(cfg(port, password="wrong"))
        with pytest.raises(AuthError) as info:
            await client.connect()
        assert info.value.reply_text == "-ERR invalid"
        assert not client.connected


async def test_rude_rejection_is_access_denied() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n")
        await writer.drain()
        await reader.read()

    async with fake_freeswitch(peer) as port:
        with pytest.raises(AccessDeniedError, match="Access Denied"):
            await InboundClient(cfg(port)).connect()


async def test_stalled_server_hits_connect_deadline() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with fake_freeswitch(silent) as port:
        with pytest.raises(EslTimeoutError, match=r"no auth/request within 0\.2s"):  # that deadline, no other
            await InboundClient(cfg(port, connect_deadline=0.2, command_deadline=3600.0)).connect()


async def test_unanswered_auth_hits_command_deadline() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AUTH_REQUEST)
        await reader.read()

    async with fake_freeswitch(mute) as port:
        with pytest.raises(EslTimeoutError, match=r"no reply to 'auth .*' within 0\.2s"):  # the command deadline
            await InboundClient(cfg(port, command_deadline=0.2, connect_deadline=3600.0)).connect()


async def test_connection_refused_is_typed() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    with pytest.raises(EslConnectionClosed, match="failed"):
        await InboundClient(cfg(port)).connect()


async def test_api_returns_body() -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AUTH_REQUEST)
        await reader.readuntil(b"\n\n")
        writer.write(ACCEPTED)
        assert await reader.readuntil(b"\n\n") == b"api status\n\n"
        writer.write(b"Content-Type: api/response\nContent-Length: 6\n\nUP 0s\n")
        await writer.drain()
        await reader.read()

    async with fake_freeswitch(peer) as port, InboundClient(cfg(port, events=())) as client:
        assert await client.api("status") == "UP 0s\n"


def test_exponential_backoff_bounds() -> None:
    policy = Backoff(initial=0.5, factor=2.0, maximum=4.0, jitter=0.25, rng=random.Random(7))
    for attempt, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (10_000, 4.0)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(base * 0.75 <= d <= base * 1.25 for d in delays)
        assert len(delays) > 1  # jitter actually varies


async def test_stream_events_reconnects_with_backoff() -> None:
    attempts = 0
    event = fixture_bytes("extract_hangup_complete_json_5551001.txt")

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            return  # accept and hang up at once
        writer.write(AUTH_REQUEST)
        await reader.readuntil(b"\n\n")
        writer.write(ACCEPTED)
        assert await reader.readuntil(b"\n\n") == (
            b"event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE\n\n"
        )
        writer.write(SUBSCRIBED + event)
        await writer.drain()
        await reader.read()

    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    async with fake_freeswitch(flaky) as port:
        backoff = Backoff(initial=1.0, factor=2.0, jitter=0.1, rng=random.Random(1))
        with structlog.testing.capture_logs() as logs:
            stream = stream_events(lambda: InboundClient(cfg(port)), backoff=backoff, sleep=fake_sleep)
            first = await asyncio.wait_for(anext(stream), 30)
            await stream.aclose()
    assert first.name == "CHANNEL_HANGUP_COMPLETE"
    assert attempts == 3
    assert len(sleeps) == 2
    assert 0.9 <= sleeps[0] <= 1.1
    assert 1.8 <= sleeps[1] <= 2.2
    assert len([e for e in logs if e["event"] == "esl.inbound.connection_lost"]) == 2


async def test_stream_events_does_not_retry_auth_errors_and_respects_max_attempts() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AUTH_REQUEST)
        await reader.readuntil(b"\n\n")
        writer.write(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
        await writer.drain()

    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    async with fake_freeswitch(refuse) as port:
        with pytest.raises(AuthError):
            await anext(stream_events(lambda: InboundClient(cfg(port)), sleep=fake_sleep))
        assert sleeps == []
        with pytest.raises(EslConnectionClosed, match="gave up after 3"):
            await anext(
                stream_events(
                    lambda: InboundClient(cfg(port)), sleep=fake_sleep, max_attempts=3, retry_auth_errors=True
                )
            )
        assert len(sleeps) == 3
