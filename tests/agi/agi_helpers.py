"""Helpers for the AGI tests: transcript loading, Asterisk's argument parser, a replaying fake Asterisk."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dncgate.agi import AgiServer
from dncgate.agi.check import check_handler
from dncgate.audit import AuditSink
from dncgate.gate import Gate
from dncgate.model import TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.store.protocol import ListStore
from tests.conftest import TEST_STORE_DEADLINE

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agi"

TRANSCRIPT = "fastagi-transcript-1795809160.17.log"
HANGUPWAIT = "fastagi-hangupwait-1795809161.18.log"
USAGE520 = "fastagi-usage520-synthetic.log"

_ENTRY = re.compile(r"^\S+ (<<|>>) (b'.*')$")


@dataclass(frozen=True)
class Exchange:
    command: bytes  # what the server sent (>>)
    replies: tuple[bytes, ...]  # what Asterisk answered (<<), in order; may start with b"HANGUP\n"


@dataclass(frozen=True)
class Transcript:
    header: tuple[bytes, ...]  # every << line up to and including the empty line
    exchanges: tuple[Exchange, ...]

    @property
    def header_bytes(self) -> bytes:
        return b"".join(self.header)

    @property
    def reply_bytes(self) -> bytes:
        return b"".join(r for ex in self.exchanges for r in ex.replies)


def load_transcript(name: str) -> Transcript:
    entries: list[tuple[str, bytes]] = []
    for line in (FIXTURES / name).read_text().splitlines():
        m = _ENTRY.match(line)
        if m:
            data = ast.literal_eval(m.group(2))
            assert isinstance(data, bytes)
            entries.append((m.group(1), data))
    header: list[bytes] = []
    i = 0
    while i < len(entries):
        direction, data = entries[i]
        assert direction == "<<"
        header.append(data)
        i += 1
        if data == b"\n":
            break
    exchanges: list[Exchange] = []
    while i < len(entries):
        direction, data = entries[i]
        assert direction == ">>"
        i += 1
        replies: list[bytes] = []
        while i < len(entries) and entries[i][0] == "<<":
            replies.append(entries[i][1])
            i += 1
        exchanges.append(Exchange(data, tuple(replies)))
    return Transcript(tuple(header), tuple(exchanges))


def asterisk_parse_args(line: str) -> list[str]:
    """A line-for-line port of parse_args() in Asterisk's res/res_agi.c (how Asterisk splits a command)."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                argv.append("")
                whitespace = False
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            argv.append("")
            whitespace = False
        assert cur is not None
        cur.append(ch)
        argv[-1] = "".join(cur)
        escaped = False
    return argv


@dataclass
class ReplayResult:
    sent: list[bytes] = field(default_factory=list)  # command lines the server sent, in order
    tail: bytes = b""  # what the server sent after the last reply (b"" = it closed the socket)
    closed_by_server: bool = False


async def replay(
    port: int,
    transcript: Transcript,
    *,
    read_timeout: float = 30.0,
    split_hangup: bool = True,
) -> ReplayResult:
    """Play Asterisk: connect to 127.0.0.1:port, send the header, answer each command with the recording.

    Mismatches are not asserted here (the server must not be left hanging); compare ``sent`` afterwards.
    """
    result = ReplayResult()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(transcript.header_bytes)
        await writer.drain()
        for ex in transcript.exchanges:
            line = await asyncio.wait_for(reader.readline(), read_timeout)
            if not line:
                result.closed_by_server = True
                return result
            result.sent.append(line)
            for reply in ex.replies:
                writer.write(reply)
                await writer.drain()
                if split_hangup and reply == b"HANGUP\n":
                    await asyncio.sleep(0.02)  # arrives as its own segment, before the reply
        result.tail = await asyncio.wait_for(reader.read(), read_timeout)
        result.closed_by_server = True
        return result
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def open_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def close_client(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 30.0) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    except ConnectionResetError:
        return b""


US_DEFAULT = {"default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"))}


@contextlib.asynccontextmanager
async def check_server(
    store: ListStore, tenants: Mapping[str, TenantPolicy] = US_DEFAULT, *, close_timeout: float = 2.0,
) -> AsyncIterator[AgiServer]:
    """The gate's ``/check`` FastAGI door on ``store`` (audit on), on a loopback port of its own."""
    audit = AuditSink(store)
    audit.start()
    server = AgiServer(check_handler(Gate(tenants, store, audit, store_deadline=TEST_STORE_DEADLINE)), port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.close(timeout=close_timeout)
        await audit.close()
