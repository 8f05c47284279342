"""What a flood of large events leaves behind (issue 11 item 11): the queue is bounded in bytes,
cleared on close, and a session's stored failure holds no frames, so a finished session is freed
by reference counting alone, with the cyclic collector off. Measured with tracemalloc and weak
references, never with time."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import weakref
from collections.abc import Iterator

import pytest
from structlog.typing import FilteringBoundLogger

from dncgate.esl.codec import EslDecoder, Limits
from dncgate.esl.connection import EslConnection
from dncgate.esl.errors import EslConnectionClosed, EslProtocolError
from dncgate.esl.outbound import Handler, OutboundConfig, OutboundServer, OutboundSession
from dncgate.sessions import ServerLimits
from tests.esl.fake_freeswitch import connect_reply

MB = 1 << 20


def event_frame(unique_id: int, body_bytes: int) -> bytes:
    """A ``text/event-plain`` frame whose event carries ``body_bytes`` of body."""
    body = b"x" * body_bytes
    inner = b"Event-Name: CUSTOM\nUnique-ID: u%d\nContent-Length: %d\n\n" % (unique_id, len(body)) + body
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


def frame_body_bytes(frame: bytes) -> int:
    return len(frame) - frame.index(b"\n\n") - 2


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _connection_to(frames: list[bytes], max_queued_bytes: int) -> tuple[EslConnection, asyncio.Server]:
    async def freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        await reader.readuntil(b"\n\n")
        writer.write(b"".join(frames) + b"Content-Type: api/response\nContent-Length: 3\n\n+OK")
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(freeswitch, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    conn = EslConnection(reader, writer, limits=Limits(), max_queued_bytes=max_queued_bytes)
    conn.start()
    await conn.wait_auth_request(5)
    await conn.command(b"api status\n\n", 5)  # its reply comes after every frame: all are read
    return conn, server


async def test_the_queue_holds_at_most_its_bytes_and_drops_the_oldest() -> None:
    frames = [event_frame(i, 100_000) for i in range(10)]
    size = frame_body_bytes(frames[0])
    conn, server = await _connection_to(frames, max_queued_bytes=3 * size)
    try:
        assert conn.queued_bytes == 3 * size
        assert conn.dropped_events == 7
        first = await conn.next_event(1)
        assert first is not None
        assert first.unique_id == "u7"
        assert conn.queued_bytes == 2 * size
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()


async def test_an_event_larger_than_the_byte_cap_is_never_queued() -> None:
    frames = [event_frame(0, 10_000), event_frame(1, 300_000), event_frame(2, 10_000)]
    conn, server = await _connection_to(frames, max_queued_bytes=100_000)
    try:
        assert conn.dropped_events == 1
        ids = [(await conn.next_event(1)) for _ in range(2)]
        assert [e.unique_id for e in ids if e is not None] == ["u0", "u2"]
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()


async def test_close_drops_the_queue_and_the_failure_keeps_no_frames() -> None:
    conn, server = await _connection_to([event_frame(i, 100_000) for i in range(5)], max_queued_bytes=8 * MB)
    assert conn.queued_bytes > 400_000
    await conn.close()
    server.close()
    await server.wait_closed()
    assert conn.queued_bytes == 0
    failure = conn.failure
    assert isinstance(failure, EslConnectionClosed)
    with pytest.raises(EslConnectionClosed):
        await conn.next_event(1)
    await conn.close()  # a second close strips what the raise above attached
    assert (failure.__traceback__, failure.__context__, failure.__cause__) == (None, None, None)


def test_a_failed_decoder_keeps_a_record_without_a_traceback() -> None:
    decoder = EslDecoder(Limits(max_line_bytes=64))
    with pytest.raises(EslProtocolError):
        decoder.feed(b"x" * 100)
    with pytest.raises(EslProtocolError, match="already failed") as refused:
        decoder.feed(b"\n")
    cause = refused.value.__cause__
    assert cause is not None
    assert cause.__traceback__ is None
    assert decoder.buffered == 0


class _TrackedServer(OutboundServer):
    """The outbound server, keeping a weak reference to each session's connection."""

    def __init__(self, handler: Handler, config: OutboundConfig, server_limits: ServerLimits) -> None:
        super().__init__(handler, config, server_limits=server_limits)
        self.connections: list[weakref.ref[EslConnection]] = []

    def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    log: FilteringBoundLogger) -> EslConnection:
        conn = super()._connection(reader, writer, log)
        self.connections.append(weakref.ref(conn))
        return conn


async def _flood_session(port: int, events: int, body_bytes: int) -> None:
    """One call whose switch answers ``connect``, floods events, then resets instead of replying."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readuntil(b"\n\n")  # connect
        writer.write(connect_reply("outbound_1_5550001"))
        await reader.readuntil(b"\n\n")  # the handler's api command: never answered
        frame = event_frame(0, body_bytes)
        for _ in range(events):
            writer.write(frame)
            await writer.drain()
    finally:
        writer.transport.abort()


async def _flood(sessions: int, events: int, body_bytes: int) -> _TrackedServer:
    async def handler(session: OutboundSession) -> None:
        await session.api("status")

    server = _TrackedServer(handler, OutboundConfig(port=0, max_queued_bytes=64 * MB),
                            server_limits=ServerLimits(max_sessions=4))
    await server.start()
    try:
        for _ in range(sessions):
            await _flood_session(server.port, events, body_bytes)
        for _ in range(200):  # bounded: each session ends when the reset reaches it
            if server.active_sessions == 0 and server.accepted == sessions:
                break
            await asyncio.sleep(0.01)
    finally:
        await server.close(1.0)
    return server


def test_a_flood_of_large_events_leaves_nothing_for_the_cyclic_collector(no_cyclic_gc: None) -> None:
    """Five sessions, each sent eight 1 MB events it queued and a reset: with the cyclic collector
    off, every connection is freed and the memory traced after them is back near the start."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        server = asyncio.run(_flood(sessions=5, events=8, body_bytes=MB))
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert server.outcomes["peer_closed"] == 5
    assert peak - before > 8 * MB  # the events were queued while each session ran
    assert [ref() for ref in server.connections] == [None] * 5
    assert after - before < 2 * MB, f"{(after - before) / MB:.1f} MB still held after the sessions"
