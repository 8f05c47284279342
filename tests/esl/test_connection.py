"""EslConnection's event stream after a failure: it ends, and the end cannot be pushed out."""

from __future__ import annotations

import asyncio

import pytest

from dncgate.esl.codec import Limits
from dncgate.esl.connection import EslConnection
from dncgate.esl.errors import CommandError, EslError, EslTimeoutError
from dncgate.esl.messages import Message
from dncgate.esl.outbound import Outcome
from dncgate.esl.transport import TransportFeed
from tests.polls import poll_until


def event_frame(unique_id: int) -> bytes:
    body = b"Event-Name: HEARTBEAT\nUnique-ID: u%d\n\n" % unique_id
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


async def test_events_after_a_command_timeout_cannot_push_out_the_end_of_stream() -> None:
    """A command times out (the connection is poisoned), then more events than the queue holds
    and the late reply arrive: the stream must still end with the timeout, not go quiet."""
    sent = asyncio.Event()
    done = asyncio.Event()
    finished = asyncio.Event()
    timed_out = asyncio.Event()

    async def freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        await reader.readuntil(b"\n\n")  # the command, answered too late: after its deadline fired
        await timed_out.wait()
        for i in range(5):
            writer.write(event_frame(i))
        writer.write(b"Content-Type: api/response\nContent-Length: 3\n\n+OK")
        await writer.drain()
        sent.set()
        await done.wait()  # stays connected until the test is over
        writer.close()
        await writer.wait_closed()
        finished.set()

    server = await asyncio.start_server(freeswitch, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = EslConnection(reader, writer, limits=Limits(), max_queued_events=3)
    conn.start()
    try:
        await conn.wait_auth_request(30)
        with pytest.raises(EslTimeoutError):
            await conn.command(b"api status\n\n", 0.1)
        timed_out.set()
        await asyncio.wait_for(sent.wait(), 30)
        # the five events read (and dropped: the connection is poisoned)
        await poll_until(lambda: conn.dropped_events >= 5, "the five events dropped")
        with pytest.raises(EslTimeoutError, match="status"):
            await conn.next_event(None)  # no deadline: must not wait for ever
        assert conn.dropped_events == 5
    finally:
        done.set()
        await conn.close()
        await asyncio.wait_for(finished.wait(), 30)
        server.close()
        await server.wait_closed()


async def test_a_command_to_a_peer_that_stops_reading_ends_at_its_deadline() -> None:
    """A command too large for the socket to a peer that reads nothing: the write pauses the
    transport, and the command's one deadline bounds the wait for it to drain."""
    done = asyncio.Event()

    async def freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()  # reads nothing
        writer.close()

    server = await asyncio.start_server(freeswitch, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = EslConnection(reader, writer, limits=Limits())
    conn.start()
    try:
        with pytest.raises(EslTimeoutError, match="no reply to 'api echo"):
            await conn.command(b"api echo " + b"x" * (64 << 20) + b"\n\n", 0.2)
        assert writer.transport.get_write_buffer_size() > writer.transport.get_write_buffer_limits()[1]
        assert isinstance(conn.failure, EslTimeoutError)  # poisoned: the reply order is lost
    finally:
        done.set()
        await conn.close()
        server.close()
        await server.wait_closed()



async def _pipeline_peer(answers: list[bytes], seen: list[bytes]) -> tuple[asyncio.Server, int]:
    """A FreeSWITCH that reads two commands before it answers (one at a time would never get answers)."""
    async def freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.extend([await reader.readuntil(b"\n\n"), await reader.readuntil(b"\n\n")])
        for answer in answers:
            writer.write(answer)
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(freeswitch, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


_OK = b"Content-Type: command/reply\nReply-Text: +OK Events Enabled\n\n"
_ERR = b"Content-Type: command/reply\nReply-Text: -ERR aready enabled.\n\n"
_SENDMSG = b"sendmsg\ncall-command: execute\nexecute-app-name: multiset\nexecute-app-arg: a=1\n\n"


@pytest.mark.parametrize("first", [_OK, _ERR])
async def test_pipelined_commands_are_answered_in_order(first: bytes) -> None:
    """Both commands go out before any reply; each reply goes to its command, an -ERR one too
    (the outcome raises CommandError for it, as the command alone would)."""
    seen: list[bytes] = []
    server, port = await _pipeline_peer([first, b"Content-Type: command/reply\nReply-Text: +OK\n\n"], seen)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = EslConnection(reader, writer, limits=Limits())
    conn.start()
    try:
        subscribed, executed = await conn.pipeline((b"myevents\n\n", _SENDMSG), 30)
        assert seen == [b"myevents\n\n", _SENDMSG]
        assert isinstance(subscribed, Message)
        assert isinstance(executed, Message)
        assert (subscribed.reply_text, executed.reply_text) == (first.split(b": ")[-1].strip().decode(), "+OK")
        outcome = Outcome("myevents", subscribed)
        if first is _ERR:
            with pytest.raises(CommandError, match="aready enabled"):
                outcome.result()
        else:
            assert outcome.result() is subscribed
        assert conn.failure is None
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()


async def test_a_pipelined_command_left_unanswered_times_out_after_the_one_answered() -> None:
    seen: list[bytes] = []
    server, port = await _pipeline_peer([_OK], seen)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = EslConnection(reader, writer, limits=Limits())
    conn.start()
    try:
        subscribed, executed = await conn.pipeline((b"myevents\n\n", _SENDMSG), 0.3)
        assert isinstance(subscribed, Message)
        assert subscribed.reply_text == "+OK Events Enabled"
        assert isinstance(executed, EslTimeoutError)
        assert str(executed) == "no reply to 'sendmsg' within 0.3s"
        with pytest.raises(EslTimeoutError, match="sendmsg"):
            Outcome("execute multiset", executed).result()
        assert conn.failure is executed  # poisoned: the reply order is lost
        with pytest.raises(EslTimeoutError):
            await conn.command(b"myevents\n\n", 30)
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()


_API_OK = b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n"
_PRE_ANSWER = b"sendmsg\ncall-command: execute\nexecute-app-name: pre_answer\nevent-lock: true\nEvent-UUID: e1\n\n"


def _complete(event_uuid: bytes) -> bytes:
    body = b"Event-Name: CHANNEL_EXECUTE_COMPLETE\nApplication: pre_answer\nApplication-UUID: %s\n\n" % event_uuid
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


async def test_an_execute_waited_for_goes_in_one_write_with_the_commands_before_it() -> None:
    """The api and the execute both go out before any reply; the api's outcome comes before the
    wait for the completion, then the execute's reply and its CHANNEL_EXECUTE_COMPLETE."""
    seen: list[bytes] = []
    server, port = await _pipeline_peer([_API_OK, b"Content-Type: command/reply\nReply-Text: +OK\n\n",
                                         _complete(b"e1")], seen)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = EslConnection(reader, writer, limits=Limits())
    conn.start()
    answers: list[Message | EslError] = []
    try:
        reply, done = await conn.send_and_wait_execute(_PRE_ANSWER, "e1", 30, 30, before=(b"api status\n\n",),
                                                       on_replies=answers.extend)
        assert seen == [b"api status\n\n", _PRE_ANSWER]
        [answer] = answers
        assert isinstance(answer, Message)
        assert answer.body_text == "+OK\n"
        assert reply.reply_text == "+OK"
        assert (done.name, done.application_uuid) == ("CHANNEL_EXECUTE_COMPLETE", "e1")
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()


async def test_an_unanswered_command_before_an_execute_fails_it() -> None:
    """No answer to the api: its outcome is the timeout, and the execute's wait raises it (the
    connection is failed, as the api alone would have failed it)."""
    seen: list[bytes] = []
    server, port = await _pipeline_peer([], seen)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = EslConnection(reader, writer, limits=Limits())
    conn.start()
    answers: list[Message | EslError] = []
    try:
        with pytest.raises(EslTimeoutError, match="no reply to 'api status'") as raised:
            await conn.send_and_wait_execute(_PRE_ANSWER, "e1", 0.2, 30, before=(b"api status\n\n",),
                                             on_replies=answers.extend)
        assert answers == [raised.value]
        assert conn.failure is raised.value
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()


async def _peer_then_close(data: bytes) -> tuple[asyncio.Server, int]:
    """A FreeSWITCH that reads one command, writes ``data`` and closes."""
    async def freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")
        writer.write(data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(freeswitch, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(("data", "error"), [
    (b"", "peer closed the connection"),
    (b"Content-Type: api/response\nContent-Length: 9\n\n+OK", "stream ended inside a body"),
])
async def test_the_transport_feeds_the_decoder_and_its_end_fails_the_connection(data: bytes, error: str) -> None:
    """Started on a quiet stream, the connection reads from the transport itself (no reader task);
    the peer's close or a frame cut short fails the waiting command, as the reader task did."""
    server, port = await _peer_then_close(data)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = EslConnection(reader, writer, limits=Limits())
    conn.start()
    try:
        assert isinstance(writer.transport.get_protocol(), TransportFeed)
        with pytest.raises(EslError, match=error):
            await conn.command(b"api status\n\n", 30)
        assert conn.failure is not None
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()
    assert writer.is_closing()


async def test_a_stream_that_already_holds_bytes_is_read_by_a_reader_task() -> None:
    """An auth/request buffered before start() is not lost: the stream is read as it is."""
    async def freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        await reader.readuntil(b"\n\n")
        writer.write(_API_OK)
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(freeswitch, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    await poll_until(lambda: len(getattr(reader, "_buffer", b"")) > 0)
    conn = EslConnection(reader, writer, limits=Limits())
    conn.start()
    try:
        assert not isinstance(writer.transport.get_protocol(), TransportFeed)
        assert (await conn.wait_auth_request(30)).content_type == "auth/request"
        assert (await conn.command(b"api status\n\n", 30)).body_text == "+OK\n"
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()
