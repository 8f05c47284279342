"""A peer that resets the connection while a command is in flight: the command fails with the
connection's error and nothing is left for the loop to report (issue 11.12: "Future exception was
never retrieved", about 20 traceback lines a reset).

The report comes from a future's finaliser, once nothing refers to the connection any more: each
test runs its own event loop to the end, then collects, then reads what the loop was told."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from dncgate.esl.codec import Limits
from dncgate.esl.connection import EslConnection
from dncgate.esl.errors import EslConnectionClosed

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Client = Callable[[EslConnection, asyncio.StreamWriter], Awaitable[None]]


def loop_reports(peer: Peer, client: Client, sessions: int) -> list[Any]:
    """Run ``sessions`` connections of ``client`` against ``peer`` on a fresh loop; what the loop was told."""
    reports: list[Any] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reports.append(context.get("message")))
        done = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"Content-Type: auth/request\n\n")
            await writer.drain()
            await peer(reader, writer)
            await done.wait()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(sessions):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            conn = EslConnection(reader, writer, limits=Limits())
            conn.start()
            try:
                await conn.wait_auth_request(2)
                await client(conn, writer)
            finally:
                await conn.close()
        done.set()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    gc.collect()
    return reports


async def silent(_: asyncio.StreamReader, __: asyncio.StreamWriter) -> None:
    return None


async def resets_on_the_command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\n\n")  # the command, never answered: the peer resets instead
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def test_a_command_on_a_connection_lost_under_it_leaves_nothing_for_the_loop_to_report() -> None:
    async def client(conn: EslConnection, writer: asyncio.StreamWriter) -> None:
        # The transport is lost under the command (as when the kernel reports the peer's reset on a
        # send): the command's write and drain meet the loss before the reader task has run.
        writer.transport.abort()
        with pytest.raises(EslConnectionClosed, match="write failed"):
            await conn.command(b"api status\n\n", 2.0)

    assert loop_reports(silent, client, sessions=3) == []


def test_a_peer_reset_with_a_command_in_flight_ends_it_with_a_typed_error() -> None:
    async def client(conn: EslConnection, _: asyncio.StreamWriter) -> None:
        with pytest.raises(EslConnectionClosed):
            await conn.command(b"api status\n\n", 2.0)
        with pytest.raises(EslConnectionClosed):  # the connection stays failed
            await conn.command(b"api status\n\n", 2.0)

    assert loop_reports(resets_on_the_command, client, sessions=10) == []
