"""Fixtures for the AGI server tests: a running AgiServer on 127.0.0.1 port 0 with captured logs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from dncgate.agi import AgiLimits, AgiServer
from dncgate.agi.session import AgiHandler
from dncgate.sessions import ServerLimits, SessionServer

# Deadlines the tests expect NOT to fire: long, so a busy machine never trips them (issue 11
# item 20). A test about a deadline sets its own short one and asserts the event, not the time.
PATIENT = AgiLimits(header_timeout=30.0, reply_timeout=30.0, close_timeout=10.0)

ServerFactory = Callable[..., Awaitable[AgiServer]]


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs() as captured:  # restores the previous structlog configuration on exit
        yield captured


@pytest.fixture
async def make_server(logs: list[MutableMapping[str, Any]]) -> AsyncIterator[ServerFactory]:
    servers: list[AgiServer] = []

    async def factory(
        handler: AgiHandler, limits: AgiLimits = PATIENT, server_limits: ServerLimits | None = None,
    ) -> AgiServer:
        server = AgiServer(handler, host="127.0.0.1", port=0, limits=limits, server_limits=server_limits)
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.close(timeout=1.0)


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def no_tracebacks(logs: list[MutableMapping[str, Any]]) -> bool:
    return not any("exc_info" in e or "exception" in e for e in logs)


async def wait_idle(server: SessionServer, timeout: float = 30.0) -> None:
    """Wait until the server has no running session (they finish after the client saw EOF)."""
    async with asyncio.timeout(timeout):
        while server.active_sessions:  # noqa: ASYNC110 - polling a counter in a test
            await asyncio.sleep(0.005)
