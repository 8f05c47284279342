"""The FastAGI server against bad peers, limits, deadlines and shutdown (loopback only)."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from dncgate.agi import AgiError, AgiLimits, AgiServer, AgiSession, AgiTimeout, SessionOutcome
from dncgate.sessions import ServerLimits
from tests.agi.agi_helpers import (
    TRANSCRIPT,
    close_client,
    load_transcript,
    open_client,
    read_until_closed,
)
from tests.agi.conftest import PATIENT, ServerFactory, events, no_tracebacks, wait_idle

Logs = list[MutableMapping[str, Any]]
HEADER = load_transcript(TRANSCRIPT).header_bytes


class Recorder:
    """A handler that records each session's uniqueid and answers one GET VARIABLE."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.values: list[str | None] = []

    async def __call__(self, s: AgiSession) -> None:
        self.calls.append(s.request.uniqueid)
        self.values.append(await s.get_variable("CALLERID(num)"))


async def proper_session(port: int) -> bytes:
    """One well-behaved Asterisk: header, answer one GET VARIABLE, wait for our close."""
    reader, writer = await open_client(port)
    try:
        writer.write(HEADER)
        line = await asyncio.wait_for(reader.readline(), 30)
        writer.write(b"200 result=1 (15551230000)\n")
        assert await read_until_closed(reader) == b""
        return line
    finally:
        await close_client(writer)


async def test_connect_and_close_without_header(make_server: ServerFactory, logs: Logs) -> None:
    """Regression (a): panoramisk froze on a peer that closed before sending a header."""
    rec = Recorder()
    server = await make_server(rec)
    for _ in range(3):
        _, writer = await open_client(server.port)
        await close_client(writer)
    await wait_idle(server)
    assert rec.calls == []
    gone = events(logs, "agi.session.peer_gone")
    assert len(gone) == 3
    # A connect-and-close probe (load balancers, monitors) is routine: a debug line, no warning (issue 11.18).
    assert all(e["phase"] == "header" and e["log_level"] == "debug" for e in gone)
    assert await proper_session(server.port) == b"GET VARIABLE CALLERID(num)\n"
    assert rec.calls == ["1795809160.17"]
    assert no_tracebacks(logs)


async def test_a_reply_with_thousands_of_digits_is_a_protocol_error(make_server: ServerFactory, logs: Logs) -> None:
    """Issue 11.13: a GET VARIABLE answered with 5,000 digits was a handler_error with a traceback."""
    rec = Recorder()
    server = await make_server(rec)
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    assert await reader.readline() == b"GET VARIABLE CALLERID(num)\n"
    writer.write(b"200 result=" + b"1" * 5000 + b"\n")
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    assert server.outcomes[SessionOutcome.PROTOCOL_ERROR] == 1
    assert [e["phase"] for e in events(logs, "agi.session.protocol_error")] == ["session"]
    assert events(logs, "agi.session.handler_error") == []
    assert no_tracebacks(logs)


async def test_a_peer_gone_inside_its_header_is_still_a_warning(make_server: ServerFactory, logs: Logs) -> None:
    rec = Recorder()
    server = await make_server(rec)
    for sent in (HEADER[:20], HEADER.split(b"\n", 1)[0] + b"\n"):  # half a line; one whole line
        _, writer = await open_client(server.port)
        writer.write(sent)
        await writer.drain()
        await close_client(writer)
    await wait_idle(server)
    gone = events(logs, "agi.session.peer_gone")
    assert [(e["phase"], e["log_level"]) for e in gone] == [("header", "warning")] * 2
    assert server.outcomes[SessionOutcome.PEER_GONE] == 2
    assert rec.calls == []


async def test_silent_peer_does_not_block_other_sessions(make_server: ServerFactory, logs: Logs) -> None:
    rec = Recorder()
    server = await make_server(rec)  # a header deadline (30 s) that cannot fire while we look
    silent_reader, silent_writer = await open_client(server.port)
    await proper_session(server.port)  # served while the silent peer holds its connection...
    assert rec.calls == ["1795809160.17"]
    assert not silent_reader.at_eof()  # ...which is still open: served beside it, not after it
    assert events(logs, "agi.session.timeout") == []
    await close_client(silent_writer)
    await wait_idle(server)
    # A silent peer alone: its header deadline closes it (the event, not the time, is asserted).
    server = await make_server(rec, AgiLimits(header_timeout=0.3, reply_timeout=30.0))
    silent_reader, silent_writer = await open_client(server.port)
    assert await read_until_closed(silent_reader) == b""
    await close_client(silent_writer)
    await wait_idle(server)
    assert rec.calls == ["1795809160.17"]
    timeouts = events(logs, "agi.session.timeout")
    assert [(e["phase"], e["timeout"]) for e in timeouts] == [("header", 0.3)]


async def test_peer_gone_while_awaiting_a_reply(make_server: ServerFactory, logs: Logs) -> None:
    """Regression (b): EOF while we await a reply ends the session with one log line, nothing escapes."""
    after: list[str] = []

    async def handler(s: AgiSession) -> None:
        value = await s.get_variable("CALLERID(num)")
        after.append(f"not reached {value}")

    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
    server = await make_server(handler)
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    assert await reader.readline() == b"GET VARIABLE CALLERID(num)\n"
    writer.write(b"200 resu")  # half a reply, then gone
    await writer.drain()
    await close_client(writer)
    await wait_idle(server)
    assert after == []
    gone = events(logs, "agi.session.peer_gone")
    assert len(gone) == 1
    assert gone[0]["phase"] == "session"
    assert gone[0]["uniqueid"] == "1795809160.17"
    assert gone[0]["channel"] == "PJSIP/uac-00000011"
    assert gone[0]["remote"].startswith("127.0.0.1:")
    assert server.outcomes[SessionOutcome.PEER_GONE] == 1
    assert no_tracebacks(logs)
    assert loop_errors == []
    rec = Recorder()
    server.handler = rec
    await proper_session(server.port)  # still serving
    assert rec.values == ["15551230000"]


async def test_overlong_header_line(make_server: ServerFactory, logs: Logs) -> None:
    rec = Recorder()
    server = await make_server(rec, AgiLimits(max_line_bytes=256, header_timeout=1.0))
    reader, writer = await open_client(server.port)
    writer.write(b"agi_network: yes\nagi_request: " + b"x" * 10_000)
    assert await read_until_closed(reader) == b""  # closed without waiting for a newline
    await close_client(writer)
    await wait_idle(server)
    assert rec.calls == []
    [err] = events(logs, "agi.session.protocol_error")
    assert (err["limit"], err["maximum"], err["phase"]) == ("max_line_bytes", 256, "header")
    assert err["log_level"] == "warning"
    assert no_tracebacks(logs)


async def test_overlong_reply_line(make_server: ServerFactory, logs: Logs) -> None:
    rec = Recorder()
    server = await make_server(rec, AgiLimits(max_line_bytes=256))
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    await reader.readline()
    writer.write(b"200 result=1 (" + b"y" * 5000 + b")\n")
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    assert rec.values == []
    [err] = events(logs, "agi.session.protocol_error")
    assert (err["limit"], err["phase"]) == ("max_line_bytes", "session")


async def test_too_many_header_lines(make_server: ServerFactory, logs: Logs) -> None:
    rec = Recorder()
    server = await make_server(rec, AgiLimits(max_header_lines=20))
    reader, writer = await open_client(server.port)
    writer.write(HEADER)  # 25 lines
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    assert rec.calls == []
    [err] = events(logs, "agi.session.protocol_error")
    assert (err["limit"], err["value"], err["maximum"]) == ("max_header_lines", 21, 20)


async def test_garbage_instead_of_a_header(make_server: ServerFactory, logs: Logs) -> None:
    rec = Recorder()
    server = await make_server(rec)
    reader, writer = await open_client(server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    assert rec.calls == []
    assert len(events(logs, "agi.session.protocol_error")) == 1
    assert no_tracebacks(logs)


async def test_dribbling_header_hits_the_header_deadline(make_server: ServerFactory, logs: Logs) -> None:
    rec = Recorder()
    server = await make_server(rec, AgiLimits(header_timeout=0.3))
    reader, writer = await open_client(server.port)
    sent = 0
    # One byte every 20 ms, never the whole header: never idle, so only a deadline on the whole
    # header closes the connection while we are still sending (an idle timeout would not).
    while sent < len(HEADER) - 1 and not reader.at_eof():
        try:
            writer.write(HEADER[sent : sent + 1])
            await writer.drain()
        except ConnectionError:
            break
        sent += 1
        await asyncio.sleep(0.02)
    assert sent < len(HEADER) - 1  # closed while the peer was still dribbling
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    assert rec.calls == []
    [t] = events(logs, "agi.session.timeout")
    assert t["phase"] == "header"


async def test_stalled_reply_hits_the_reply_deadline(make_server: ServerFactory, logs: Logs) -> None:
    errors: list[BaseException] = []

    async def handler(s: AgiSession) -> None:
        try:
            await s.get_variable("CALLERID(num)")
        except AgiError as exc:
            errors.append(exc)
        # The session is unusable now: a late reply would be taken for the next command's.
        await s.noop()

    server = await make_server(handler, AgiLimits(reply_timeout=0.2))
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    assert await reader.readline() == b"GET VARIABLE CALLERID(num)\n"
    assert await read_until_closed(reader) == b""  # no NOOP was sent after the timeout
    await close_client(writer)
    await wait_idle(server)
    assert [type(e).__name__ for e in errors] == ["AgiTimeout"]
    assert isinstance(errors[0], AgiTimeout)
    assert (errors[0].phase, errors[0].timeout) == ("reply", 0.2)  # the reply deadline fired
    [gone] = events(logs, "agi.session.peer_gone")  # the NOOP after the timeout is refused
    assert "unusable" in gone["error"]


async def test_per_command_reply_timeout_override(make_server: ServerFactory, logs: Logs) -> None:
    results: list[int] = []

    async def handler(s: AgiSession) -> None:
        results.append(await s.exec("Playback", "beep", reply_timeout=30.0))  # not expected to fire

    server = await make_server(handler, AgiLimits(reply_timeout=0.1))
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    assert await reader.readline() == b'EXEC Playback "beep"\n'
    await asyncio.sleep(0.3)  # longer than the default deadline
    writer.write(b"200 result=0\n")
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    assert results == [0]
    assert events(logs, "agi.session.timeout") == []


async def test_session_timeout_bounds_the_handler(make_server: ServerFactory, logs: Logs) -> None:
    async def handler(s: AgiSession) -> None:
        await asyncio.Event().wait()  # never ends by itself: only the session deadline ends it

    server = await make_server(handler, AgiLimits(session_timeout=0.2))
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    [t] = events(logs, "agi.session.timeout")
    assert t["phase"] == "session"


async def test_concurrency_limit(make_server: ServerFactory, logs: Logs) -> None:
    release = asyncio.Event()
    running: list[str] = []

    async def handler(s: AgiSession) -> None:
        running.append(s.request.uniqueid)
        await release.wait()

    server = await make_server(handler, PATIENT, ServerLimits(max_sessions=2))
    clients = [await open_client(server.port) for _ in range(2)]
    for _, w in clients:
        w.write(HEADER)
    async with asyncio.timeout(30):
        while len(running) < 2:  # noqa: ASYNC110 - waiting for both handlers to start
            await asyncio.sleep(0.005)
    extra_reader, extra_writer = await open_client(server.port)
    assert await read_until_closed(extra_reader, timeout=1.0) == b""  # closed at once
    await close_client(extra_writer)
    [w] = events(logs, "door.server.session_refused")
    assert (w["log_level"], w["max_sessions"], w["active"]) == ("warning", 2, 2)
    assert (w["door"], w["reason"]) == ("agi", "max_sessions")
    assert server.refused == 1
    assert server.active_sessions == 2
    release.set()
    for r, wr in clients:
        assert await read_until_closed(r) == b""
        await close_client(wr)
    await wait_idle(server)
    assert server.outcomes[SessionOutcome.OK] == 2
    server.handler = Recorder()
    await proper_session(server.port)  # a slot is free again


async def test_graceful_shutdown_waits_for_a_session_in_flight(make_server: ServerFactory, logs: Logs) -> None:
    rec = Recorder()
    server = await make_server(rec)
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    assert await reader.readline() == b"GET VARIABLE CALLERID(num)\n"
    closing = asyncio.create_task(server.close(timeout=30.0))  # a grace the session ends well inside
    await asyncio.sleep(0.1)
    assert not closing.done()  # waiting for the session
    with pytest.raises(ConnectionRefusedError):  # no longer accepting
        await open_client(server.port)
    writer.write(b"200 result=1 (15551230000)\n")
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await asyncio.wait_for(closing, 30)
    assert rec.values == ["15551230000"]
    assert server.outcomes[SessionOutcome.OK] == 1
    assert events(logs, "door.server.sessions_cancelled") == []
    assert [e["event"] for e in logs if e["event"].startswith("door.server.clos")] == [
        "door.server.closing", "door.server.closed",
    ]


async def test_graceful_shutdown_cancels_after_the_grace_period(make_server: ServerFactory, logs: Logs) -> None:
    async def handler(s: AgiSession) -> None:
        await s.get_variable("CALLERID(num)")  # the peer never answers

    server = await make_server(handler, AgiLimits(reply_timeout=3600.0))
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    assert await reader.readline() == b"GET VARIABLE CALLERID(num)\n"
    async with asyncio.timeout(60):  # far inside the reply deadline: close cancelled, did not wait it out
        await server.close(timeout=0.2)
    assert await read_until_closed(reader) == b""  # we closed the socket
    await close_client(writer)
    assert server.active_sessions == 0
    assert server.outcomes[SessionOutcome.CANCELLED] == 1
    [c] = events(logs, "door.server.sessions_cancelled")
    assert c["count"] == 1
    assert len(events(logs, "agi.session.cancelled")) == 1
    await server.close(timeout=0.1)  # idempotent


async def test_handler_bug_is_logged_and_server_keeps_serving(make_server: ServerFactory, logs: Logs) -> None:
    async def handler(s: AgiSession) -> None:
        raise RuntimeError("bug in the call handler")

    server = await make_server(handler)
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    [err] = events(logs, "agi.session.handler_error")
    assert err["log_level"] == "error"
    assert isinstance(err["exc_info"], RuntimeError)  # our own bug does get a traceback
    server.handler = Recorder()
    await proper_session(server.port)


async def test_uncaught_dead_channel_is_a_hangup_outcome(make_server: ServerFactory, logs: Logs) -> None:
    async def handler(s: AgiSession) -> None:
        await s.command("ANSWER")

    server = await make_server(handler)
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    await reader.readline()
    writer.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    assert server.outcomes[SessionOutcome.HANGUP] == 1
    [h] = events(logs, "agi.session.hangup")
    assert h["log_level"] == "info"


async def test_async_context_manager_and_default_address() -> None:
    assert (AgiServer(Recorder()).host, AgiServer(Recorder()).port) == ("127.0.0.1", 4573)
    server = AgiServer(Recorder(), port=0, limits=PATIENT)
    async with server:
        assert server.serving
        assert server.port != 0
        await proper_session(server.port)
    assert not server.serving


async def test_after_close_callbacks_run_once_after_eof_whatever_the_ending(
    make_server: ServerFactory, logs: Logs,
) -> None:
    ran: list[str] = []
    closed_before: list[bool] = []

    async def handler(s: AgiSession) -> None:
        s.after_close(lambda: ran.append(s.request.uniqueid))
        s.after_close(lambda: closed_before.append(s._writer.is_closing()))  # type: ignore[attr-defined]
        s.after_close(lambda: 1 / 0)  # a broken callback is logged; the others still run
        if s.request.get("callerid") == "boom":
            raise RuntimeError("handler failed")

    server = await make_server(handler)
    reader, writer = await open_client(server.port)
    writer.write(HEADER)
    await writer.drain()
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    reader, writer = await open_client(server.port)
    writer.write(HEADER.replace(b"agi_callerid: 15551230000", b"agi_callerid: boom"))
    await writer.drain()
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    await wait_idle(server)
    assert len(ran) == 2
    assert closed_before == [True, True]
    failures = events(logs, "agi.session.after_close_failed")
    assert [f["error"] for f in failures] == ["ZeroDivisionError('division by zero')"] * 2
    assert len(events(logs, "agi.session.handler_error")) == 1


async def test_a_peer_outside_allow_is_closed_before_its_header(make_server: ServerFactory, logs: Logs) -> None:
    """Issue 11 item 10: whoever reaches the port could drive /ivr; only allowed peers get a session."""
    rec = Recorder()
    server = await make_server(rec, PATIENT, ServerLimits(allow=("127.0.0.1/32",)))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.2", 0))
    writer.write(HEADER)
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    assert rec.calls == []
    assert server.refused_by == {"not_allowed": 1}
    [w] = events(logs, "door.server.session_refused")
    assert (w["door"], w["reason"], w["remote"].split(":")[0]) == ("agi", "not_allowed", "127.0.0.2")
    await proper_session(server.port)  # 127.0.0.1 is served
    assert rec.calls == ["1795809160.17"]


async def test_one_peer_cannot_hold_every_agi_session(make_server: ServerFactory, logs: Logs) -> None:
    """Issue 11 item 10: one peer reconnecting could hold all the sessions."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def handler(s: AgiSession) -> None:
        entered.set()
        await release.wait()

    server = await make_server(handler, PATIENT, ServerLimits(max_sessions=3, max_sessions_per_peer=1))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.2", 0))
    writer.write(HEADER)
    await asyncio.wait_for(entered.wait(), 30)
    extra_reader, extra_writer = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=("127.0.0.2", 0))
    assert await read_until_closed(extra_reader) == b""  # AGISTATUS=FAILURE: the dialplan fails closed
    await close_client(extra_writer)
    assert server.refused_by == {"max_sessions_per_peer": 1}
    assert server.sessions_of("127.0.0.2") == 1
    release.set()
    assert await read_until_closed(reader) == b""
    await close_client(writer)
    server.handler = Recorder()
    await proper_session(server.port)  # another peer was never short of a slot
    await wait_idle(server)
    assert server.outcomes[SessionOutcome.OK] == 2
