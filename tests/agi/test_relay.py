"""dncgate-agi as Asterisk runs it: relayed to a running gate (fast path), or deciding in-process."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dncgate.agi import AgiServer, AgiSession
from dncgate.agi.relay import gate_address, wants_in_process
from dncgate.sessions import ServerLimits
from dncgate.store.sqlite import SqliteListStore
from tests.agi.agi_helpers import check_server
from tests.conftest import free_port

BINARY = str(Path(sys.executable).parent / "dncgate-agi")
HEADER = (
    "agi_request: dncgate-agi\nagi_channel: PJSIP/dialer-00000001\nagi_language: en\nagi_type: PJSIP\n"
    "agi_uniqueid: 1795809160.17\nagi_callerid: 4001234567\nagi_context: outbound\nagi_extension: s\n"
    "agi_priority: 1\nagi_accountcode: \nagi_arg_1: {number}\nagi_arg_2: tenant=default\n"
    "agi_arg_3: purpose=marketing\n{extra}\n"
)


@pytest.mark.parametrize(
    ("env", "config", "expected"),
    [
        ({}, "", ("127.0.0.1", 4573)),
        ({"DNCGATE_AGI_RELAY": "off"}, "", None),
        ({"DNCGATE_AGI_RELAY": "127.0.0.2:5000"}, "", ("127.0.0.2", 5000)),
        ({"DNCGATE_AGI_RELAY": "[::1]:5000"}, "", ("::1", 5000)),
        ({}, '[agi]\nhost = "0.0.0.0"\nport = 4600\n', ("127.0.0.1", 4600)),
        ({"DNCGATE_AGI__PORT": "4700"}, "[agi]\nport = 4600\n", ("127.0.0.1", 4700)),
        ({}, "[agi]\nenabled = false\n", None),
        ({}, "not toml [", ("127.0.0.1", 4573)),
        ({"DNCGATE_AGI_RELAY": "127.0.0.1:many"}, "", None),
    ],
)
def test_gate_address(tmp_path: Path, env: dict[str, str], config: str, expected: tuple[str, int] | None) -> None:
    path = tmp_path / "dncgate.toml"
    path.write_text(config)
    assert gate_address(env, str(path)) == expected


def test_relay_off_argument() -> None:
    assert wants_in_process(HEADER.format(number="1", extra="agi_arg_4: relay=off\n").encode())
    assert not wants_in_process(HEADER.format(number="1", extra="").encode())


@pytest.fixture
async def gate_server(tmp_path: Path) -> AsyncIterator[tuple[AgiServer, Path]]:
    db = tmp_path / "agi.sqlite3"
    store = SqliteListStore(db)
    await store.replace_list("national", [12015550123])
    try:
        async with check_server(store) as server:
            yield server, db
    finally:
        await store.close()


async def run_agi(env: dict[str, str], number: str, extra: str = "") -> tuple[str, int]:
    """Spawn dncgate-agi like Asterisk, answer every command with 200: its MSet verdict and exit code
    (the verdict gets ``|in-process`` when the process decided by itself)."""
    proc = await asyncio.create_subprocess_exec(
        BINARY, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdin.write(HEADER.format(number=number, extra=extra).encode())
    verdict = ""
    async with asyncio.timeout(30):
        while line := await proc.stdout.readline():
            if line.startswith(b"EXEC MSet"):
                verdict = line.decode().split("DNCGATE_VERDICT=")[1].split(",")[0]
            proc.stdin.write(b"200 result=0\n")
            await proc.stdin.drain()
        proc.stdin.close()
        err = await proc.stderr.read()
        code = await proc.wait()
    return verdict + ("|in-process" if b"agi.classic.in_process" in err else ""), code


def base_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGATE_")}
    return env | {"DNCGATE_STORE__PATH": str(db), "DNCGATE_TENANTS__DEFAULT__REGION": "US"}


async def test_relayed_to_the_running_gate(gate_server: tuple[AgiServer, Path]) -> None:
    server, db = gate_server
    env = base_env(db) | {"DNCGATE_AGI_RELAY": f"127.0.0.1:{server.port}"}
    assert await run_agi(env, "2015550123") == ("reject", 0)
    assert await run_agi(env, "2015550124") == ("allow", 0)
    assert sum(server.outcomes.values()) == 2  # both sessions were served by the gate


async def test_no_gate_listening_decides_in_process(gate_server: tuple[AgiServer, Path]) -> None:
    _, db = gate_server
    env = base_env(db) | {"DNCGATE_AGI_RELAY": f"127.0.0.1:{free_port()}"}
    assert await run_agi(env, "2015550123") == ("reject|in-process", 0)


async def test_relay_off_argument_decides_in_process(gate_server: tuple[AgiServer, Path]) -> None:
    server, db = gate_server
    env = base_env(db) | {"DNCGATE_AGI_RELAY": f"127.0.0.1:{server.port}"}
    assert await run_agi(env, "2015550123", "agi_arg_4: relay=off\n") == ("reject|in-process", 0)
    assert sum(server.outcomes.values()) == 0


async def test_a_gate_at_its_session_limit_is_decided_in_process(tmp_path: Path) -> None:
    """An overloaded gate accepts and drops the connection: the relay falls back, no traceback."""
    db = tmp_path / "agi.sqlite3"
    store = SqliteListStore(db)
    await store.replace_list("national", [12015550123])
    await store.close()
    held = asyncio.Event()

    async def hold(session: AgiSession) -> None:
        held.set()
        await asyncio.sleep(10)

    server = AgiServer(hold, port=0, server_limits=ServerLimits(max_sessions=1))
    await server.start()
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(HEADER.format(number="1", extra="").encode())
        await asyncio.wait_for(held.wait(), 30)  # the one slot is taken
        env = base_env(db) | {"DNCGATE_AGI_RELAY": f"127.0.0.1:{server.port}"}
        assert await run_agi(env, "2015550123") == ("reject|in-process", 0)
    finally:
        writer.close()
        await server.close(timeout=1)


async def test_a_gate_lost_mid_session_fails_closed_without_a_traceback(tmp_path: Path) -> None:
    async def send_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")
        writer.write(b"VERBOSE \"checking\" 1\n")  # a command reaches Asterisk...
        await writer.drain()
        await reader.readline()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # ...then the gate is gone (RST)

    fake_gate = await asyncio.start_server(send_then_drop, "127.0.0.1", 0)
    port = fake_gate.sockets[0].getsockname()[1]
    env = base_env(tmp_path / "unused.sqlite3") | {"DNCGATE_AGI_RELAY": f"127.0.0.1:{port}"}
    proc = await asyncio.create_subprocess_exec(
        BINARY, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(HEADER.format(number="2015550123", extra="").encode())
    async with asyncio.timeout(30):
        assert await proc.stdout.readline() == b'VERBOSE "checking" 1\n'
        proc.stdin.write(b"200 result=1\n")
        await proc.stdin.drain()
        rest = await proc.stdout.read()
        _, err = await proc.communicate()
    fake_gate.close()
    assert rest == b""  # no verdict: the dialplan fails closed
    assert proc.returncode == 1
    assert b"agi.relay.broken" in err
    assert b"Traceback" not in err
