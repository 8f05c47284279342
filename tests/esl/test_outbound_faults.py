"""The outbound server under hostile or broken peers: every session ends logged and closed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog
from esl_helpers import fixture_bytes

from dncgate.esl.errors import CommandError, EslConnectionClosed
from dncgate.esl.outbound import OutboundConfig, OutboundServer, OutboundSession
from dncgate.sessions import ServerLimits

CONNECT_REPLY = fixture_bytes("extract_connect_reply_5550001.txt")
OK = b"Content-Type: command/reply\nReply-Text: +OK\n\n"


def config(**kw: Any) -> OutboundConfig:
    # deadlines the tests expect NOT to fire are long (issue 11 item 20); a test of a deadline sets it
    base: dict[str, Any] = {"port": 0, "connect_deadline": 30.0, "command_deadline": 30.0, "event_deadline": 30.0}
    base.update(kw)
    return OutboundConfig(**base)


async def never_called(session: OutboundSession) -> None:
    raise AssertionError("handler must not run")


async def dial(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.readexactly(9), 30) == b"connect\n\n"
    return reader, writer


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 30)


async def wait_closed_log(logs: list[dict[str, Any]], server: OutboundServer) -> list[dict[str, Any]]:
    """Drain the server (close() waits for every session task) and return the close records."""
    await server.close(timeout=30)
    return [e for e in logs if e["event"] == "esl.session.closed"]


@pytest.mark.parametrize(
    ("payload", "error_type"),
    [
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\n\n", "MalformedHeaderError"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "MalformedHeaderError"),
        (b"x" * 20000, "LimitExceededError"),
        (b"Content-Type: api/response\nContent-Length: 123456789012\n\n", "LimitExceededError"),
        (b"Content-Type: api/response\nContent-Length: twelve\n\n", "InvalidContentLengthError"),
    ],
)
async def test_garbage_is_a_logged_protocol_error(payload: bytes, error_type: str) -> None:
    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(never_called, config(connect_deadline=3600.0)) as server:
            reader, writer = await dial(server.port)
            writer.write(payload)
            async with asyncio.timeout(60):  # refused at once (outcome protocol_error), no deadline involved
                assert await until_closed(reader) == b""  # the server closed us, said nothing more
            writer.close()
            (closed,) = await wait_closed_log(logs, server)
    (err,) = [e for e in logs if e["event"] == "esl.session.protocol_error"]
    assert err["error_type"] == error_type
    assert closed["outcome"] == "protocol_error"


async def test_truncated_body_then_eof() -> None:
    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(never_called, config()) as server:
            reader, writer = await dial(server.port)
            writer.write(b"Content-Type: command/reply\nContent-Length: 100\n\nonly-this")
            writer.write_eof()
            assert await until_closed(reader) == b""
            writer.close()
            (closed,) = await wait_closed_log(logs, server)
    (err,) = [e for e in logs if e["event"] == "esl.session.protocol_error"]
    assert err["error_type"] == "IncompleteMessageError"
    assert closed["outcome"] == "protocol_error"


async def test_connect_and_close_immediately() -> None:
    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(never_called, config()) as server:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.close()
            (closed,) = await wait_closed_log(logs, server)
    assert closed["outcome"] == "peer_closed"
    assert not [e for e in logs if e["event"] == "esl.session.handler_error"]


async def test_stalled_peer_hits_connect_deadline_fast() -> None:
    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(never_called, config(connect_deadline=0.2)) as server:
            reader, writer = await dial(server.port)
            assert await until_closed(reader) == b""
            writer.close()
            (closed,) = await wait_closed_log(logs, server)
    (timeout,) = [e for e in logs if e["event"] == "esl.session.timeout"]
    assert "within 0.2s" in timeout["error"]  # the connect deadline fired, not another one
    assert closed["outcome"] == "timeout"


async def test_stall_mid_dialogue_hits_command_deadline() -> None:
    async def handler(session: OutboundSession) -> None:
        await session.myevents()  # the peer never answers

    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(handler, config(command_deadline=0.2)) as server:
            reader, writer = await dial(server.port)
            writer.write(CONNECT_REPLY)
            assert await asyncio.wait_for(reader.readexactly(10), 30) == b"myevents\n\n"
            assert await until_closed(reader) == b""
            writer.close()
            (closed,) = await wait_closed_log(logs, server)
    assert closed["outcome"] == "timeout"
    assert closed["unique_id"] == "51489bd7-f8d6-4b06-a0ac-50b6ef133f4b"
    assert closed["destination"] == "5550001"


async def test_disconnect_mid_event_surfaces_as_error_in_events() -> None:
    raised: list[type[BaseException]] = []

    async def handler(session: OutboundSession) -> None:
        await session.myevents()
        try:
            async for _ in session.events():
                pass
        except Exception as exc:
            raised.append(type(exc))
            raise  # the session's error boundary logs it

    event = fixture_bytes("extract_hangup_complete_plain_5550001.txt")
    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(handler, config()) as server:
            reader, writer = await dial(server.port)
            writer.write(CONNECT_REPLY)
            await asyncio.wait_for(reader.readexactly(10), 30)
            writer.write(b"Content-Type: command/reply\nReply-Text: +OK Events Enabled\n\n")
            writer.write(event[: len(event) // 2])
            await writer.drain()
            writer.write_eof()
            assert await until_closed(reader) == b""
            writer.close()
            (closed,) = await wait_closed_log(logs, server)
    assert [t.__name__ for t in raised] == ["IncompleteMessageError"]
    assert closed["outcome"] == "protocol_error"


async def test_execute_error_reply_raises_command_error() -> None:
    caught: list[str] = []

    async def handler(session: OutboundSession) -> None:
        try:
            await session.execute("nosuchapp", wait=True)
        except CommandError as exc:
            caught.append(exc.reply_text)

    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(handler, config(), uuid_factory=lambda: "u-1") as server:
            reader, writer = await dial(server.port)
            writer.write(CONNECT_REPLY)
            sent = await asyncio.wait_for(reader.readuntil(b"\n\n"), 30)
            assert sent.endswith(b"Event-UUID: u-1\n\n")
            writer.write(b"Content-Type: command/reply\nReply-Text: -ERR invalid application\n\n")
            assert await until_closed(reader) == b""
            writer.close()
            (closed,) = await wait_closed_log(logs, server)
    assert caught == ["-ERR invalid application"]
    assert closed["outcome"] == "ok"


async def test_handler_bug_is_contained_and_server_keeps_serving() -> None:
    calls = 0

    async def buggy(session: OutboundSession) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ZeroDivisionError("handler bug")

    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(buggy, config()) as server:
            for _ in range(2):
                reader, writer = await dial(server.port)
                writer.write(CONNECT_REPLY)
                assert await until_closed(reader) == b""
                writer.close()
            closed = await wait_closed_log(logs, server)
    assert [c["outcome"] for c in closed] == ["handler_error", "ok"]
    (bug,) = [e for e in logs if e["event"] == "esl.session.handler_error"]
    assert bug["log_level"] == "error"


async def test_concurrency_limit_refuses_extra_sessions() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def blocking(session: OutboundSession) -> None:
        entered.set()
        await release.wait()

    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(blocking, config(), server_limits=ServerLimits(max_sessions=1)) as server:
            reader1, writer1 = await dial(server.port)
            writer1.write(CONNECT_REPLY)
            await asyncio.wait_for(entered.wait(), 30)
            assert server.active_sessions == 1
            # Refused, but after `connect` (issue 15: a socket closed before `connect` parks the
            # call); once FreeSWITCH has answered it, the gate closes and the dialplan rejects.
            reader2, writer2 = await dial(server.port)
            writer2.write(CONNECT_REPLY)
            assert await until_closed(reader2) == b""
            writer2.close()
            assert server.refused == 1
            release.set()
            assert await until_closed(reader1) == b""
            writer1.close()
            await wait_closed_log(logs, server)
    (refused,) = [e for e in logs if e["event"] == "door.server.session_refused"]
    assert (refused["door"], refused["reason"]) == ("esl", "max_sessions")


async def test_graceful_close_is_bounded_and_cancels_stuck_sessions() -> None:
    entered = asyncio.Event()

    async def stuck(session: OutboundSession) -> None:
        entered.set()
        await asyncio.Event().wait()

    with structlog.testing.capture_logs() as logs:
        server = OutboundServer(stuck, config())
        await server.start()
        port = server.port
        reader, writer = await dial(port)
        writer.write(CONNECT_REPLY)
        await asyncio.wait_for(entered.wait(), 30)
        async with asyncio.timeout(60):  # the handler waits forever: close's 0.2 s grace, then cancel
            await server.close(timeout=0.2)
        assert await until_closed(reader) == b""
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
    closed = [e for e in logs if e["event"] == "esl.session.closed"]
    assert [c["outcome"] for c in closed] == ["cancelled"]
    assert server.active_sessions == 0


async def test_execute_wait_fails_when_channel_goes_away() -> None:
    caught: list[str] = []

    async def handler(session: OutboundSession) -> None:
        try:
            await session.execute("playback", "x.wav", wait=True)
        except EslConnectionClosed as exc:
            caught.append(str(exc))

    notice = b"Content-Type: text/disconnect-notice\nContent-Disposition: linger\nContent-Length: 0\n\n"
    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(handler, config(execute_deadline=5.0), uuid_factory=lambda: "u-2") as server:
            reader, writer = await dial(server.port)
            writer.write(CONNECT_REPLY)
            await asyncio.wait_for(reader.readuntil(b"\n\n"), 30)
            writer.write(OK + notice)
            assert await until_closed(reader) == b""
            writer.close()
            (closed,) = await wait_closed_log(logs, server)
    assert caught == ["disconnect-notice received"]
    assert closed["outcome"] == "ok"
