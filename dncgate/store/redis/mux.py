"""The lookup channel: one auto-pipelined Redis connection shared by every concurrent lookup.

A redis-py pipeline costs ~200 us of Python per call, which caps ``facts()`` near 3-4k/s per
process. Lookups instead pack their commands with hiredis, write them to one shared connection
and wait for their replies, which Redis returns in order: concurrent lookups pipeline each other
for free. Replies are parsed by ``hiredis.Reader`` in ``data_received``.

Failure handling matches the pooled clients: a connect or reply that takes longer than its
timeout, a refused or reset connection, all surface as redis-py ``ConnectionError`` /
``TimeoutError`` so the injectable ``Retry`` policy applies; a reply timeout closes the connection
(its replies can no longer be matched) and the next call reconnects. A caller cancelled while
waiting leaves its slot in the queue, so later replies still reach the right callers.
"""

from __future__ import annotations

import asyncio
import builtins
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.asyncio.retry import Retry
from redis.exceptions import ConnectionError, InvalidResponse, ResponseError, TimeoutError

Command = tuple[str | bytes | int, ...]


def pack(*commands: Command) -> bytes:
    # hiredis stubs type the argument as a 1-tuple; any tuple of str, bytes and numbers works.
    return b"".join(hiredis.pack_command(command) for command in commands)  # type: ignore[arg-type]


@dataclass(slots=True)
class _Call:
    future: asyncio.Future[list[Any]]
    expected: int
    sent_at: float
    replies: list[Any] = field(default_factory=list)


class _Protocol(asyncio.Protocol):
    def __init__(self, mux: Multiplexer) -> None:
        self._mux = mux

    def data_received(self, data: bytes) -> None:
        self._mux.feed(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._mux.lost(self, exc)


class Multiplexer:
    def __init__(
        self, url: str, *, connect_timeout: float, reply_timeout: float, retry: Retry, client_name: str,
        address: tuple[str, int] | None = None,
    ) -> None:
        """``address``: this host and port instead of the URL's (a cluster node; credentials from the URL)."""
        self._params = parse_url(url)
        if address is not None:
            self._params["host"], self._params["port"] = address
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._retry = retry
        self._client_name = client_name
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self._pending: deque[_Call] = deque()
        self._connect_lock = asyncio.Lock()
        self._closed = False
        # While replies are awaited, the writes of one loop iteration go out in one send (an idle
        # channel writes at once); a watchdog times out stalled replies.
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands``, return their replies (errors as values)."""
        return await self.execute(pack(*commands), len(commands))

    async def execute(self, packed: bytes, expected: int) -> list[Any]:
        """Send pre-packed commands, return their ``expected`` replies (errors as values)."""
        return await self._retry.call_with_retry(lambda: self._attempt(packed, expected), self._failed)

    async def _failed(self, error: Exception) -> None:
        self._abort(error)

    async def _attempt(self, packed: bytes, expected: int) -> list[Any]:
        transport = self._transport
        if transport is None or transport.is_closing():
            transport = await self._connect()
        return await self._send(transport, packed, expected)

    async def _send(self, transport: asyncio.Transport, packed: bytes, expected: int) -> list[Any]:
        loop = asyncio.get_running_loop()
        call = _Call(loop.create_future(), expected, loop.time())
        idle = not self._pending and not self._out
        self._pending.append(call)
        if idle and transport is self._transport:
            # Nothing in flight: no lookup to share a send with, so do not wait a loop turn.
            transport.write(packed)
        else:
            self._out.append(packed)
            if self._flush_handle is None:
                self._flush_handle = loop.call_soon(self._flush, transport)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._reply_timeout / 4, self._watch)
        return await call.future

    def _flush(self, transport: asyncio.Transport) -> None:
        self._flush_handle = None
        out, self._out = self._out, []
        if transport is self._transport and out:
            transport.write(b"".join(out))

    def _watch(self) -> None:
        """Abort the connection when the oldest call has waited longer than the reply timeout."""
        self._watchdog = None
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        waited = loop.time() - self._pending[0].sent_at
        if waited >= self._reply_timeout:
            self._abort(TimeoutError(f"no reply from redis within {self._reply_timeout} s"))
            return
        self._watchdog = loop.call_later(min(self._reply_timeout / 4, self._reply_timeout - waited), self._watch)

    async def _connect(self) -> asyncio.Transport:
        async with self._connect_lock:
            if self._transport is not None and not self._transport.is_closing():
                return self._transport
            if self._closed:
                raise ConnectionError("lookup channel is closed")
            loop = asyncio.get_running_loop()
            params = self._params
            try:
                async with asyncio.timeout(self._connect_timeout):
                    connection_class = params.get("connection_class")
                    if connection_class is UnixDomainSocketConnection:
                        transport, protocol = await loop.create_unix_connection(
                            lambda: _Protocol(self), str(params["path"])
                        )
                    else:
                        context = ssl.create_default_context() if connection_class is SSLConnection else None
                        transport, protocol = await loop.create_connection(
                            lambda: _Protocol(self), str(params.get("host", "localhost")),
                            int(params.get("port", 6379)), ssl=context,
                        )
                    self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
                    self._transport, self._protocol = transport, protocol
                    await self._handshake(transport)
            except builtins.TimeoutError as exc:
                self._abort(TimeoutError("connect timed out"))
                raise TimeoutError(f"connect to redis timed out after {self._connect_timeout} s") from exc
            except OSError as exc:
                self._abort(ConnectionError(str(exc)))
                raise ConnectionError(f"connect to redis: {exc}") from exc
            return transport

    async def _handshake(self, transport: asyncio.Transport) -> None:
        commands: list[Command] = []
        if self._params.get("password"):
            user = self._params.get("username")
            auth: Command = ("AUTH", user, self._params["password"]) if user else ("AUTH", self._params["password"])
            commands.append(auth)
        if int(self._params.get("db", 0) or 0):
            commands.append(("SELECT", int(self._params["db"])))
        commands.append(("CLIENT", "SETNAME", self._client_name))
        replies = await self._send(transport, pack(*commands), len(commands))
        for reply in replies:
            if isinstance(reply, ResponseError):
                self._abort(ConnectionError(str(reply)))
                raise ConnectionError(f"redis handshake: {reply}")

    def feed(self, protocol: _Protocol, data: bytes) -> None:
        if protocol is not self._protocol:
            return
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except InvalidResponse as exc:
                self._abort(ConnectionError(f"redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not self._pending:
                self._abort(ConnectionError("redis sent a reply nobody asked for"))
                return
            call = self._pending[0]
            call.replies.append(reply)
            if len(call.replies) == call.expected:
                self._pending.popleft()
                if not call.future.done():
                    call.future.set_result(call.replies)

    def lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is self._protocol:
            self._abort(ConnectionError(f"redis connection lost: {exc or 'closed by server'}"))

    def _abort(self, error: Exception) -> None:
        """Close the connection and fail every call still waiting on it."""
        transport, self._transport, self._protocol = self._transport, None, None
        pending, self._pending = self._pending, deque()
        self._out = []
        for handle in (self._flush_handle, self._watchdog):
            if handle is not None:
                handle.cancel()
        self._flush_handle = None
        self._watchdog = None
        for call in pending:
            if not call.future.done():
                call.future.set_exception(error)
        if transport is not None:
            transport.abort()

    @property
    def busy(self) -> bool:
        """Replies are awaited (or writes queued) on this connection."""
        return bool(self._pending or self._out)

    def abort(self) -> None:
        """Close for good (a cluster node dropped from the slot table); nothing may be waiting on it."""
        self._closed = True
        self._abort(ConnectionError("lookup channel closed"))

    async def close(self) -> None:
        self.abort()
