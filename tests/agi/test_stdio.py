"""Classic AGI: the same session and error boundary over stdin/stdout pipes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import MutableMapping
from typing import Any

from dncgate.agi import AgiLimits, AgiSession, SessionOutcome, run_session, run_stdio_session
from tests.agi.conftest import events

Logs = list[MutableMapping[str, Any]]

CLASSIC_HEADER = (
    b"agi_request: /usr/share/asterisk/agi-bin/dncgate-agi\n"
    b"agi_channel: PJSIP/uac-00000011\n"
    b"agi_uniqueid: 1795809160.17\n"
    b"agi_arg_1: 705550100\n"
    b"agi_arg_2: tenant=acme\n"
    b"\n"
)


async def test_classic_session_over_pipes(logs: Logs) -> None:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    # Everything Asterisk would send, up front: the session reads it in order.
    os.write(in_w, CLASSIC_HEADER + b"200 result=1 (acme)\n" + b"HANGUP\n200 result=1\n")
    got: dict[str, Any] = {}

    async def handler(s: AgiSession) -> None:
        got["request"] = s.request
        got["tenant"] = await s.get_variable("DNCGATE_TENANT")
        await s.set_variable("DNCGATE_VERDICT", 'reject"\nEXEC Dial')
        got["hung_up"] = s.hung_up

    with os.fdopen(in_r, "rb", buffering=0) as stdin, os.fdopen(out_w, "wb", buffering=0) as stdout:
        outcome = await run_stdio_session(handler, AgiLimits(reply_timeout=1.0), stdin=stdin, stdout=stdout)
    os.close(in_w)
    sent = b""
    while chunk := os.read(out_r, 65536):
        sent += chunk
    os.close(out_r)

    assert outcome is SessionOutcome.OK
    assert got["request"].network is False
    assert got["request"].script == "/usr/share/asterisk/agi-bin/dncgate-agi"
    assert got["request"].args == ("705550100", "tenant=acme")
    assert got["tenant"] == "acme"
    assert got["hung_up"] is True
    assert sent == b'GET VARIABLE DNCGATE_TENANT\nSET VARIABLE DNCGATE_VERDICT "reject\\" EXEC Dial"\n'
    [notice] = events(logs, "agi.session.hangup_notice")
    assert notice["remote"] == "stdio"


class MemoryWriter:
    """A ByteWriter that keeps what was written (run_session works with any reader/writer pair)."""

    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        await asyncio.sleep(0)


async def test_run_session_over_arbitrary_streams_and_eof(logs: Logs) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(CLASSIC_HEADER)
    reader.feed_eof()  # Asterisk went away before answering
    writer = MemoryWriter()
    calls: list[str] = []

    async def handler(s: AgiSession) -> None:
        calls.append(s.request.uniqueid)
        await s.noop()

    outcome = await run_session(reader, writer, handler, remote="memory")
    assert outcome is SessionOutcome.PEER_GONE
    assert calls == ["1795809160.17"]
    assert writer.data == b"NOOP\n"
    assert writer.closed
    [gone] = events(logs, "agi.session.peer_gone")
    assert (gone["remote"], gone["uniqueid"]) == ("memory", "1795809160.17")


async def test_from_streams_gives_a_session_without_the_boundary() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(CLASSIC_HEADER + b"200 result=0\n")
    writer = MemoryWriter()
    session = await AgiSession.from_streams(reader, writer, AgiLimits(reply_timeout=0.5))
    assert await session.get_variable("NOPE") is None
    await session.aclose()
    assert writer.closed
    assert writer.data == b"GET VARIABLE NOPE\n"
