"""asyncio FastAGI server: Asterisk connects, we run one :class:`AgiSession` per connection."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

import structlog

from dncgate.agi.limits import AgiLimits
from dncgate.agi.session import AgiHandler, SessionOutcome, run_session

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "AgiServer"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573


def _remote(writer: asyncio.StreamWriter) -> str:
    peer: Any = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer or "")


class AgiServer:
    """FastAGI server.

    ``handler(session)`` runs once per connection after the header block arrived; the server closes
    the socket when it returns (Asterisk never does). At most ``limits.max_sessions`` sessions run at
    once: further connections are closed immediately with an ``agi.server.session_limit`` warning,
    which Asterisk reports as AGISTATUS=FAILURE.

    Usage::

        server = AgiServer(handler, port=4573)
        await server.start()
        ...
        await server.close(timeout=5.0)

    or ``async with AgiServer(handler) as server: await server.serve_forever()``.
    """

    def __init__(
        self,
        handler: AgiHandler,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        limits: AgiLimits | None = None,
        backlog: int = 128,
    ) -> None:
        self.handler = handler
        self.host = host
        self.limits = limits or AgiLimits()
        self._port = port
        self._backlog = backlog
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[SessionOutcome]] = set()
        self._closing = False
        self._closed = asyncio.Event()
        self._log = structlog.get_logger()
        self.outcomes: dict[SessionOutcome, int] = dict.fromkeys(SessionOutcome, 0)
        self.rejected = 0

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    @property
    def serving(self) -> bool:
        return self._server is not None and not self._closing

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("AgiServer already started")
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self._port, backlog=self._backlog,
            limit=max(self.limits.read_chunk, 2**16),
        )
        self._log.info("agi.server.started", host=self.host, port=self.port,
                       max_sessions=self.limits.max_sessions)

    async def serve_forever(self) -> None:
        """Wait until :meth:`close` has finished (starting the server first if needed)."""
        if self._server is None:
            await self.start()
        await self._closed.wait()

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        remote = _remote(writer)
        if self._closing or len(self._sessions) >= self.limits.max_sessions:
            self.rejected += 1
            self._log.warning(
                "agi.server.session_limit", remote=remote, active=len(self._sessions),
                max_sessions=self.limits.max_sessions, closing=self._closing,
            )
            writer.transport.abort()
            return
        task = asyncio.get_running_loop().create_task(
            run_session(reader, writer, self.handler, self.limits, remote=remote),
            name=f"agi-session-{remote}",
        )
        self._sessions.add(task)
        task.add_done_callback(self._session_done)

    def _session_done(self, task: asyncio.Task[SessionOutcome]) -> None:
        self._sessions.discard(task)
        if task.cancelled():
            self.outcomes[SessionOutcome.CANCELLED] += 1
            return
        exc = task.exception()
        if exc is not None:  # run_session only lets CancelledError out; keep the loop clean anyway
            self._log.error("agi.server.session_crashed", error=repr(exc))
            self.outcomes[SessionOutcome.HANDLER_ERROR] += 1
            return
        self.outcomes[task.result()] += 1

    async def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, let running sessions finish for up to ``timeout`` seconds, cancel the rest."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        running = set(self._sessions)
        self._log.info("agi.server.closing", active=len(running), timeout=timeout)
        if self._server is not None:
            self._server.close()
        if running:
            _, pending = await asyncio.wait(running, timeout=timeout)
            if pending:
                self._log.warning("agi.server.sessions_cancelled", count=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=max(self.limits.close_timeout, 0.1) * 2)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=max(timeout, 0.1))
        self._log.info("agi.server.closed")
        self._closed.set()

    async def __aenter__(self) -> AgiServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.close()
