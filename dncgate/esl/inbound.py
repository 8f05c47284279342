"""Inbound event-socket client: we connect to FreeSWITCH (port 8021).

``auth`` -> ``event json ...`` -> events.  :func:`stream_events` wraps a client
factory with reconnects (exponential backoff with jitter, injectable sleep).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from dncgate.backoff import Backoff, BackoffPolicy
from dncgate.config_file import LOOPBACK_HOST
from dncgate.esl import commands
from dncgate.esl.codec import Limits
from dncgate.esl.connection import EslConnection
from dncgate.esl.errors import AuthError, EslConnectionClosed, EslError, EslTimeoutError
from dncgate.esl.messages import Event, EventFormat, Message

__all__ = [
    "DEFAULT_EVENTS",
    "Backoff",
    "BackoffPolicy",
    "InboundClient",
    "InboundConfig",
    "stream_events",
]

DEFAULT_EVENTS: tuple[str, ...] = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")


@dataclass(frozen=True, slots=True)
class InboundConfig:
    host: str = LOOPBACK_HOST
    port: int = 8021
    password: str = field(default="ClueCon", repr=False)
    events: Sequence[str] = DEFAULT_EVENTS
    event_format: EventFormat = "json"
    connect_deadline: float = 5.0  # TCP connect + auth/request
    command_deadline: float = 5.0  # each command reply
    event_deadline: float | None = None  # idle time between events (None: wait forever)
    close_deadline: float = 1.0
    max_queued_events: int = 10000
    max_queued_bytes: int = 32 << 20  # one feed of every channel's events: more room than a call's session
    limits: Limits = field(default_factory=Limits)


class InboundClient:
    def __init__(self, config: InboundConfig | None = None) -> None:
        self.config = config if config is not None else InboundConfig()
        self._conn: EslConnection | None = None
        self._log = structlog.get_logger().bind(esl_host=self.config.host, esl_port=self.config.port)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def _require(self) -> EslConnection:
        if self._conn is None:
            raise EslConnectionClosed("not connected")
        return self._conn

    async def connect(self) -> None:
        """Open, authenticate and subscribe; raises AuthError on ``-ERR invalid``."""
        cfg = self.config
        try:
            async with asyncio.timeout(cfg.connect_deadline):
                reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
        except TimeoutError:
            raise EslTimeoutError(f"connect to {cfg.host}:{cfg.port} took over {cfg.connect_deadline}s") from None
        except OSError as exc:
            raise EslConnectionClosed(f"connect to {cfg.host}:{cfg.port} failed: {exc}") from exc
        conn = EslConnection(
            reader, writer, limits=cfg.limits, max_queued_events=cfg.max_queued_events,
            max_queued_bytes=cfg.max_queued_bytes, log=self._log,
        )
        self._conn = conn
        conn.start()
        try:
            await conn.wait_auth_request(cfg.connect_deadline)
            reply = await conn.command(commands.auth(cfg.password), cfg.command_deadline)
            if not reply.ok:
                raise AuthError("auth", reply.reply_text or "")
            if cfg.events:
                await self.subscribe(cfg.events)
        except BaseException:
            await self.close()
            raise
        self._log.info("esl.inbound.connected")

    async def subscribe(self, events: Sequence[str], fmt: EventFormat | None = None) -> Message:
        reply = await self._require().command(
            commands.event(fmt or self.config.event_format, events), self.config.command_deadline
        )
        return reply.raise_for_error("event")

    async def api(self, command: str) -> str:
        reply = await self._require().command(commands.api(command), self.config.command_deadline)
        return reply.body_text

    async def bgapi(self, command: str, job_uuid: str | None = None) -> str:
        """Start a background job; returns its Job-UUID (BACKGROUND_JOB events carry it)."""
        reply = await self._require().command(commands.bgapi(command, job_uuid), self.config.command_deadline)
        reply.raise_for_error("bgapi")
        return reply.headers.get("Job-UUID") or job_uuid or ""

    async def sendevent(self, name: str, headers: Sequence[tuple[str, str]], body: str = "") -> Message:
        """Fire an event in FreeSWITCH (``sendevent``); the reply is ``+OK <event uuid>``."""
        reply = await self._require().command(commands.sendevent(name, headers, body), self.config.command_deadline)
        return reply.raise_for_error("sendevent")

    async def next_event(self) -> Event | None:
        return await self._require().next_event(self.config.event_deadline)

    def events(self) -> AsyncIterator[Event]:
        return self._require().iter_events(self.config.event_deadline)

    async def exit(self) -> None:
        """Polite goodbye (``exit`` -> ``+OK bye``), then close."""
        conn = self._conn
        if conn is not None and not conn.closed:
            try:
                await conn.command(commands.exit_(), self.config.command_deadline)
            finally:
                await self.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close(self.config.close_deadline)

    async def __aenter__(self) -> InboundClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def stream_events(
    client_factory: Callable[[], InboundClient],
    *,
    backoff: BackoffPolicy | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_attempts: int | None = None,
    retry_auth_errors: bool = False,
    on_state: Callable[[str, str], None] | None = None,
) -> AsyncIterator[Event]:
    """Yield events forever, reconnecting with backoff.

    ``AuthError`` is raised (a wrong password does not fix itself) unless
    ``retry_auth_errors``.  ``max_attempts`` consecutive failures raise the last
    error.  The attempt counter resets after each successful connect.  ``on_state`` hears
    ``("connected", "")`` after each connect and ``("down", why)`` after each loss or failed attempt.
    """

    def tell(state: str, why: str) -> None:
        if on_state is not None:
            on_state(state, why)

    policy = backoff if backoff is not None else Backoff()
    log = structlog.get_logger()
    failures = 0
    while True:
        client = client_factory()
        try:
            await client.connect()
            failures = 0
            tell("connected", "")
            async for event in client.events():
                yield event
            log.info("esl.inbound.disconnected")
            tell("down", "FreeSWITCH closed the connection")
        except AuthError as exc:
            tell("down", str(exc))
            if not retry_auth_errors:
                raise
            log.warning("esl.inbound.auth_failed")
        except EslError as exc:
            log.warning("esl.inbound.connection_lost", error=str(exc), error_type=type(exc).__name__)
            tell("down", str(exc))
        finally:
            await client.close()
        if max_attempts is not None and failures >= max_attempts:
            raise EslConnectionClosed(f"gave up after {failures} reconnect attempts")
        delay = policy.delay(failures)
        failures += 1
        log.info("esl.inbound.reconnect_wait", attempt=failures, delay_s=round(delay, 3))
        await sleep(delay)
