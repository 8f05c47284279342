"""The HTTP listener's bounds (issue 11 item 9): a connection cap (accepting pauses at it), a
deadline for a new connection's first request head, and a keep-alive timeout far below aiohttp's
3,630 s. Each wait here is an upper bound on something that must happen, never a speed target."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from dncgate.acceptor import Acceptor
from dncgate.http import AcceptorSite, make_app, start_http
from dncgate.metrics import GateMetrics
from dncgate.settings import HttpServerSettings
from tests.polls import poll_until

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: gate\r\n\r\n"
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Store:
    async def ping(self) -> None:  # /healthz's only use of the store
        return None


Start = Callable[..., Awaitable[tuple[int, Acceptor]]]


@pytest.fixture
async def http() -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []

    async def start(**settings: float) -> tuple[int, Acceptor]:
        app = make_app(Store(), GateMetrics(), {"agi": True, "esl": False})  # type: ignore[arg-type]
        runner, port = await start_http(app, HttpServerSettings(port=0, **settings))  # type: ignore[arg-type]
        runners.append(runner)
        site = next(iter(runner.sites))
        assert isinstance(site, AcceptorSite)
        assert site.acceptor is not None
        return port, site.acceptor

    yield start
    for runner in runners:
        await runner.cleanup()


async def reply_head(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(10):
        return await reader.readuntil(b"\r\n\r\n")



async def test_at_the_cap_accepting_pauses_until_a_connection_ends(http: Start) -> None:
    port, acceptor = await http(max_connections=3)
    idle: list[Streams] = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    await poll_until(lambda: acceptor.open == 3)
    waiting = await asyncio.open_connection("127.0.0.1", port)  # the kernel's backlog takes it
    waiting[1].write(HEALTHZ)
    await asyncio.sleep(0.2)
    assert acceptor.accepted == 3  # not accepted while three are open
    idle[0][1].close()
    assert (await reply_head(waiting[0])).startswith(b"HTTP/1.1 200")
    assert acceptor.accepted == 4
    for _, writer in [*idle[1:], waiting]:
        writer.close()


async def test_a_connection_that_sends_no_request_head_is_closed(http: Start) -> None:
    port, acceptor = await http(header_timeout=0.5, keepalive_timeout=3600)
    silent = await asyncio.open_connection("127.0.0.1", port)
    slow = await asyncio.open_connection("127.0.0.1", port)
    slow[1].write(b"GET /healthz HTTP/1.1\r\nHost: ")  # and never the rest
    async with asyncio.timeout(10):
        assert await silent[0].read() == b""
        assert await slow[0].read() == b""
    await poll_until(lambda: acceptor.open == 0)
    for _, writer in (silent, slow):
        writer.close()


async def test_an_idle_keep_alive_connection_is_closed(http: Start) -> None:
    port, _ = await http(keepalive_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEALTHZ)
    head = await reply_head(reader)
    assert head.startswith(b"HTTP/1.1 200")
    async with asyncio.timeout(10):
        rest = await reader.read()  # the body, then the close
    assert rest.endswith(b"}")
    writer.close()


def test_the_defaults_are_far_below_aiohttps() -> None:
    settings = HttpServerSettings()
    assert (settings.max_connections, settings.header_timeout, settings.keepalive_timeout) == (256, 10.0, 15.0)
