"""The accept loop out of descriptors (issue 11 item 9): a real EMFILE, from a soft open-file limit
lowered for the test, is backed off and logged once per interval, not retried in a tight loop,
and accepting resumes when descriptors are back. The clients connect before the limit is lowered
(the kernel completes their handshake without an accept)."""

from __future__ import annotations

import asyncio
import os
import resource
import socket

from structlog.testing import capture_logs

from dncgate.acceptor import Acceptor
from dncgate.backoff import Backoff
from tests.polls import poll_until

CLIENTS = 6


class Keep(asyncio.Protocol):
    """Holds each accepted connection open (the descriptor stays in use)."""

    transports: list[asyncio.BaseTransport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transports.append(transport)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))



async def test_out_of_descriptors_the_accept_loop_backs_off_and_logs_once() -> None:
    transports: list[asyncio.BaseTransport] = []
    Keep.transports = transports
    acceptor = Acceptor("test", Keep, "127.0.0.1", 0, backoff=Backoff(initial=0.005, maximum=0.01, jitter=0),
                        clock=lambda: 0.0)
    clients: list[socket.socket] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with capture_logs() as logs:
        await acceptor.start()
        for _ in range(CLIENTS):
            clients.append(socket.create_connection(("127.0.0.1", acceptor.port), timeout=5))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_descriptors() + 2, hard))  # room for about two
        try:
            await poll_until(lambda: acceptor.accept_failures >= 20)
            held = len(transports)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        await poll_until(lambda: len(transports) == CLIENTS)
    acceptor.close()
    await acceptor.wait_closed()
    for transport in transports:
        transport.close()
    for client in clients:
        client.close()
    failed = [e for e in logs if e["event"] == "acceptor.accept_failed"]
    assert held < CLIENTS  # some waited for descriptors
    assert acceptor.accepted == CLIENTS
    assert len(failed) == 1  # the clock stands still: one line for the whole interval
    assert failed[0]["error"] == "EMFILE"
    assert failed[0]["log_level"] == "warning"


async def test_the_cap_holds_connections_in_the_backlog() -> None:
    transports: list[asyncio.BaseTransport] = []
    Keep.transports = transports
    acceptor = Acceptor("test", Keep, "127.0.0.1", 0, max_connections=2)
    await acceptor.start()
    clients = [socket.create_connection(("127.0.0.1", acceptor.port), timeout=5) for _ in range(4)]
    await poll_until(lambda: acceptor.open == 2)
    await asyncio.sleep(0.1)
    assert acceptor.accepted == 2
    transports[0].close()
    acceptor.release()
    await poll_until(lambda: acceptor.accepted == 3)
    acceptor.close()
    await acceptor.wait_closed()
    assert acceptor.sockets == ()
    for transport in transports:
        transport.close()
    for client in clients:
        client.close()
