"""Hostile peers for a running ``dncgate serve`` (issue 11 items 9-18), and the probes that show
every door still answers: shared by tests/hostile and bench/hostile.py.

Everything is loopback, bounded in count, and every network wait has a deadline. A probe places
one well-behaved call: ``agi_check`` speaks FastAGI as Asterisk does (header, then ``200
result=...`` to each command), ``esl_call`` is the reactive fake FreeSWITCH of the ESL tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.gate_process import E2E_TENANTS, GateProcess
from tests.e2e.lab import LOOPBACK, free_tcp_port
from tests.esl.fake_freeswitch import CallTrace, FakeFreeSwitch, connect_reply, with_destination, with_variables

LISTED = "2015550123"  # +12015550123: on the national list (tests.e2e.gate_process.STANDARD_LISTS)
CLEAR = "2015550124"
IO_DEADLINE = 10.0
ESL_REPLY = connect_reply("outbound_2_85550001")  # a recorded connect reply (fail-closed layout)


# ---------------------------------------------------------------------- the gate under attack

@dataclass
class Caps:
    agi_sessions: int = 64
    esl_sessions: int = 32
    http_connections: int = 64
    header_timeout_s: float = 2.0
    keepalive_timeout_s: float = 5.0
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # the call doors' peers (the default)


def hostile_config(redis_url: str, gate: GateProcess, esl_port: int, caps: Caps) -> str:
    """serve with all three doors (AGI, ESL, HTTP with the API) on loopback, and small caps."""
    allow = json.dumps(list(caps.allow))
    return f"""\
[audit]
spool_dir = "{gate.workdir / 'audit-spool'}"

[store]
backend = "redis"
url = "{redis_url}"

[national]
region = "US"

[agi]
host = "{LOOPBACK}"
port = {gate.agi_port}
max_sessions = {caps.agi_sessions}
allow = {allow}

[esl]
enabled = true
host = "{LOOPBACK}"
port = {esl_port}
max_sessions = {caps.esl_sessions}
allow = {allow}

[http]
host = "{LOOPBACK}"
port = {gate.http_port}
max_connections = {caps.http_connections}
header_timeout_s = {caps.header_timeout_s}
keepalive_timeout_s = {caps.keepalive_timeout_s}

{E2E_TENANTS}"""


def hostile_gate(workdir: Path, redis_url: str, *, caps: Caps | None = None,
                 open_files: int | None = None) -> tuple[GateProcess, int]:
    """A GateProcess (not started) configured by :func:`hostile_config`; and its ESL port."""
    gate = GateProcess(workdir, redis_url, open_files=open_files)
    esl_port = free_tcp_port()
    gate.config_text = hostile_config(redis_url, gate, esl_port, caps or Caps())
    return gate, esl_port


def descriptors_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def memory_of(pid: int) -> tuple[int, int]:
    """(RSS, peak RSS) of a process in bytes, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


# ---------------------------------------------------------------------- well-behaved probes

def agi_header(script: str, number: str, uniqueid: str = "1795809160.17") -> bytes:
    return (
        f"agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1/{script}\n"
        f"agi_channel: PJSIP/uac-00000001\nagi_language: en\nagi_uniqueid: {uniqueid}\n"
        f"agi_callerid: 4001234567\nagi_extension: {number}\nagi_arg_1: {number}\n\n"
    ).encode()


_MSET = re.compile(r'^EXEC MSet "?(.*?)"?$')
_SET = re.compile(r'^SET VARIABLE (\S+) "?(.*?)"?$')


async def agi_check(port: int, number: str = LISTED, query: str = "tenant=acme&purpose=marketing",
                    *, get_variable_reply: bytes = b"200 result=0\n") -> dict[str, str]:
    """One FastAGI check as Asterisk places it; the channel variables the gate set."""
    variables: dict[str, str] = {}
    async with asyncio.timeout(IO_DEADLINE):
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            writer.write(agi_header(f"check?{query}" if query else "check", number))
            while line := (await reader.readline()).decode().rstrip("\n"):
                if line.startswith("GET VARIABLE"):
                    writer.write(get_variable_reply)
                    continue
                if m := _MSET.match(line):
                    for pair in m.group(1).split(","):
                        name, _, value = pair.partition("=")
                        variables[name] = value
                elif m := _SET.match(line):
                    variables[m.group(1)] = m.group(2)
                writer.write(b"200 result=1\n")
        finally:
            writer.close()
    return variables


async def esl_call(port: int, number: str = LISTED, **variables: str) -> CallTrace:
    """One call through the outbound event socket, from the fake FreeSWITCH (tenant acme by default)."""
    reply = with_variables(with_destination(ESL_REPLY, number), **({"dncgate_tenant": "acme"} | variables))
    return await FakeFreeSwitch(reply, io_deadline=IO_DEADLINE).call(port)


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    """One HTTP/1.1 request with ``Connection: close``: (status, body); (0, b"") when not answered."""
    try:
        async with asyncio.timeout(IO_DEADLINE):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n".encode())
                return split_reply(await reader.read())
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return 0, b""


def split_reply(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return (int(match.group(1)) if match else 0), body


@dataclass
class Answers:
    """Whether each door gave its documented reply to a listed number (acme: 607)."""

    agi: bool
    esl: bool
    http: bool
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def all(self) -> bool:
        return self.agi and self.esl and self.http


async def doors_answer(agi_port: int, esl_port: int, http_port: int, *, http: bool = True) -> Answers:
    """Probe each door once (``http=False``: skip the HTTP door, the one under a flood)."""
    detail: dict[str, Any] = {}
    try:
        variables = await agi_check(agi_port)
        detail["agi"] = variables
        agi_ok = (variables.get("DNCGATE_VERDICT"), variables.get("DNCGATE_SIPCODE")) == ("reject", "607")
    except (OSError, TimeoutError) as exc:
        detail["agi"], agi_ok = repr(exc), False
    try:
        trace = await esl_call(esl_port)
        detail["esl"] = trace.outcome
        esl_ok = trace.sip_code == 607
    except (OSError, TimeoutError, AssertionError) as exc:
        detail["esl"], esl_ok = repr(exc), False
    http_ok = True
    if http:
        status, body = await http_get(http_port, "/healthz")
        detail["http"] = status
        http_ok = status == 200 and json.loads(body).get("status") == "ok"
    return Answers(agi_ok, esl_ok, http_ok, detail)


# ---------------------------------------------------------------------- floods

def open_idle(port: int, count: int, source: str = LOOPBACK) -> list[socket.socket]:
    """``count`` TCP connections that never send a byte (non-blocking connects: beyond the
    listener's backlog the kernel leaves them half-open, which is part of the flood), from the
    loopback address ``source`` (127.0.0.2 is another peer to the gate)."""
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((source, 0))
        sock.setblocking(False)
        code = sock.connect_ex((LOOPBACK, port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(code, os.strerror(code))
        sockets.append(sock)
    return sockets


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()
    sockets.clear()


OVERSIZE_REQUESTS = {
    "20 KB request line": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: gate\r\n\r\n",
    "10,000 headers": b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)) + b"\r\n",
    "1 MB header line": b"GET /healthz HTTP/1.1\r\nHost: gate\r\nX-Big: " + b"b" * (1 << 20) + b"\r\n\r\n",
}


def raw_http(port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is (in chunks, stopping when the gate stops reading); the reply.

    A plain socket, not asyncio streams: a gate that answers and closes before reading everything
    resets the connection, and a stream reader then raises the reset before the reply it holds;
    ``recv`` hands over what arrived before the reset."""
    with socket.create_connection((LOOPBACK, port), timeout=IO_DEADLINE) as sock:
        with contextlib.suppress(OSError):
            for start in range(0, len(request), 1 << 16):
                sock.sendall(request[start:start + (1 << 16)])
        raw = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(1 << 16):
                raw += chunk
    return split_reply(raw)


async def agi_digit_overflow(port: int, digits: int = 5000) -> bytes:
    """A check whose GET VARIABLE is answered with ``digits`` digits; what the gate sent after it."""
    async with asyncio.timeout(IO_DEADLINE):
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            writer.write(agi_header("check", LISTED))  # no query: the gate asks the channel
            first = await reader.readline()
            if not first.startswith(b"GET VARIABLE"):
                raise AssertionError(f"expected GET VARIABLE, got {first!r}")
            writer.write(b"200 result=" + b"1" * digits + b"\n")
            return await reader.read()  # until the gate closes
        finally:
            writer.close()


def event_frame(body_bytes: int, name: str = "CUSTOM") -> bytes:
    """A ``text/event-plain`` frame whose event carries ``body_bytes`` of body."""
    inner = b"Event-Name: %s\nContent-Length: %d\n\n" % (name.encode(), body_bytes) + b"x" * body_bytes
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


async def esl_event_flood(port: int, events: int, body_bytes: int) -> None:
    """A switch that answers ``connect`` and every command, and floods large events as it goes,
    then drops the connection."""
    frame = event_frame(body_bytes)
    async with asyncio.timeout(IO_DEADLINE * 3):
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            await reader.readuntil(b"\n\n")  # connect
            writer.write(with_variables(with_destination(ESL_REPLY, CLEAR), dncgate_tenant="acme"))
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await reader.readuntil(b"\n\n")  # the gate's first command: answered with the flood first
                for _ in range(events):
                    writer.write(frame)
                    await writer.drain()
        finally:
            writer.transport.abort()


async def connect_close(port: int, count: int) -> None:
    """Connect and close without a byte, like a load balancer's health probe."""
    for _ in range(count):
        async with asyncio.timeout(IO_DEADLINE):
            _, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.close()
            await writer.wait_closed()


async def unknown_tenants(agi_port: int, count: int) -> list[dict[str, str]]:
    """``count`` checks naming tenants nobody configured, each a different name."""
    return [await agi_check(agi_port, LISTED, f"tenant=nosuch{i}&purpose=marketing") for i in range(count)]


def tenant_labels(metrics: bytes) -> set[str]:
    """The tenant label values of ``dncgate_decisions_total`` in a /metrics page."""
    found = re.findall(rb'^dncgate_decisions_total\{[^}]*tenant="([^"]*)"', metrics, re.M)
    return {label.decode() for label in found}

