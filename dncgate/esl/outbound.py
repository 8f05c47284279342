"""Outbound event-socket server: FreeSWITCH dials us once per call.

Dialplan: ``<action application="socket" data="127.0.0.1:8084 async full"/>``.
For each connection the server sends ``connect``, parses the channel data into
:class:`~dncgate.esl.messages.ChannelData`, and awaits ``handler(session)``.
Every session runs inside one error boundary (logged, never crashing the
server) under an overall deadline, and the server always closes the socket.

Accepting, the peer allowlist, the session caps and the bounded close are the shared
:class:`~dncgate.sessions.SessionServer`'s.  A call the gate has no room for is still answered
with ``connect`` and then closed (:meth:`OutboundServer._refuse_call`): after ``connect`` a closed
socket makes FreeSWITCH continue with the dialplan's fail path (the reject after ``socket``,
as for any check that did not decide), while a socket closed before ``connect`` parks the
call.  A peer outside ``allow`` is not a FreeSWITCH we trust: it is closed at once, without
``connect`` (the shipped dialplan bounds that park with ``park_timeout``).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from dncgate.config_file import ESL_PORT, LOOPBACK_HOST
from dncgate.esl import commands
from dncgate.esl.codec import Limits
from dncgate.esl.connection import MAX_QUEUED_BYTES, EslConnection
from dncgate.esl.errors import CommandError, EslConnectionClosed, EslError, EslProtocolError
from dncgate.esl.messages import ChannelData, Event, EventFormat, Message
from dncgate.sessions import Peer, ServerLimits, SessionServer

__all__ = ["Handler", "OutboundConfig", "OutboundServer", "OutboundSession", "Outcome"]


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    host: str = LOOPBACK_HOST
    port: int = ESL_PORT
    connect_deadline: float = 5.0  # for the reply to `connect`
    command_deadline: float = 5.0  # for each command reply
    event_deadline: float = 60.0  # idle time allowed between events in session.events()
    execute_deadline: float = 120.0  # for CHANNEL_EXECUTE_COMPLETE when execute(wait=True)
    session_deadline: float | None = 3600.0  # whole session, handler included
    close_deadline: float = 1.0  # for the socket to close
    max_queued_events: int = 1000
    max_queued_bytes: int = MAX_QUEUED_BYTES  # the events' body bytes queued; oldest dropped beyond
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One reply of pipelined commands: the reply, or the error that ended the wait for it."""

    command: str
    reply: Message | EslError

    def result(self) -> Message:
        """The reply; raises the error, or :class:`CommandError` for an ``-ERR`` reply."""
        if isinstance(self.reply, EslError):
            raise self.reply
        return self.reply.raise_for_error(self.command)


@dataclass(eq=False)
class OutboundSession:
    """What a call handler gets: the channel data plus awaitable commands.

    Every method is bounded by the configured deadlines and raises a subclass
    of :class:`~dncgate.esl.errors.EslError` on failure (``CommandError`` for
    ``-ERR`` replies).
    """

    _conn: EslConnection
    channel: ChannelData
    _config: OutboundConfig
    log: structlog.typing.FilteringBoundLogger
    _uuid_factory: Callable[[], str]

    @property
    def unique_id(self) -> str:
        return self.channel.unique_id

    @property
    def disconnect_notice(self) -> Message | None:
        return self._conn.disconnect_notice

    async def _command(self, data: bytes, name: str) -> Message:
        reply = await self._conn.command(data, self._config.command_deadline)
        return reply.raise_for_error(name)

    async def myevents(self, fmt: EventFormat | None = None) -> Message:
        """Subscribe to this channel's events (``plain`` when fmt is None, as FreeSWITCH defaults)."""
        return await self._command(commands.myevents(fmt), "myevents")

    async def myevents_and_execute(self, app: str, arg: str | None = None) -> tuple[Outcome, Outcome]:
        """``myevents`` and a ``sendmsg`` execute (not waited for) in one write: one round trip, not two.

        FreeSWITCH runs them as if the execute were sent after the ``myevents`` reply: it answers
        pipelined commands in order (:meth:`EslConnection.pipeline`), and an outbound socket's first
        ``myevents`` is always ``+OK Events Enabled`` (1.11.1 ``parse_command``: its one ``-ERR`` is
        "already enabled").  Each outcome raises what :meth:`myevents` / :meth:`execute` would."""
        data = commands.sendmsg_execute(app, arg, event_uuid=self._uuid_factory())
        subscribed, executed = await self._conn.pipeline((commands.myevents(), data), self._config.command_deadline)
        return Outcome("myevents", subscribed), Outcome(f"execute {app}", executed)

    async def linger(self, seconds: int | None = None) -> Message:
        return await self._command(commands.linger(seconds), "linger")

    async def nolinger(self) -> Message:
        return await self._command(commands.nolinger(), "nolinger")

    async def resume(self) -> Message:
        """When our socket closes, let the dialplan continue after the socket app."""
        return await self._command(commands.resume(), "resume")

    async def exit(self) -> Message:
        return await self._command(commands.exit_(), "exit")

    async def api(self, command: str) -> str:
        """Run an API command; returns the response body (may start with ``-ERR``)."""
        reply = await self._conn.command(commands.api(command), self._config.command_deadline)
        return reply.body_text

    async def getvar(self, name: str) -> str | None:
        """``uuid_getvar`` for this channel; None when unset (``_undef_``)."""
        value = await self.api(f"uuid_getvar {self.unique_id} {name}")
        return None if value in ("_undef_", "") or value.startswith("-ERR") else value

    async def execute(
        self, app: str, arg: str | None = None, *, lock: bool = True, wait: bool = False
    ) -> Event | None:
        """``sendmsg`` execute.  With ``wait=True`` return its CHANNEL_EXECUTE_COMPLETE event.

        Waiting needs events enabled (call :meth:`myevents` first); the event is
        matched by ``Application-UUID`` == the ``Event-UUID`` we send.
        """
        event_uuid = self._uuid_factory()
        data = commands.sendmsg_execute(app, arg, lock=lock, event_uuid=event_uuid)
        if not wait:
            await self._command(data, f"execute {app}")
            return None
        reply, done = await self._conn.send_and_wait_execute(
            data, event_uuid, self._config.command_deadline, self._config.execute_deadline
        )
        reply.raise_for_error(f"execute {app}")
        return done

    async def api_and_execute(self, command: str, app: str, arg: str | None = None, *,
                              on_answer: Callable[[str], None]) -> Event:
        """``api`` and a ``sendmsg`` execute waited for (:meth:`execute` with ``wait=True``) in one
        write: one round trip, not two.

        FreeSWITCH runs them as if the execute were sent after the api's answer: mod_event_socket
        (1.11.1 ``parse_command``) runs ``api`` in the listener's own thread and answers it before it
        reads the next command (:meth:`EslConnection.pipeline`).  ``on_answer`` gets the api's answer
        (what :meth:`api` returns) once the execute's reply is in, before the wait for its completion;
        a failed wait for the api's answer fails the connection and is raised, as :meth:`api` raises it."""
        event_uuid = self._uuid_factory()
        data = commands.sendmsg_execute(app, arg, event_uuid=event_uuid)

        def answered(outcomes: list[Message | EslError]) -> None:
            [outcome] = outcomes
            if not isinstance(outcome, EslError):
                on_answer(outcome.body_text)

        reply, done = await self._conn.send_and_wait_execute(
            data, event_uuid, self._config.command_deadline, self._config.execute_deadline,
            before=(commands.api(command),), on_replies=answered)
        reply.raise_for_error(f"execute {app}")
        return done

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> Message:
        return await self._command(commands.sendmsg_hangup(cause), "hangup")

    async def next_event(self) -> Event | None:
        """Next event, or None after the disconnect-notice / EOF."""
        return await self._conn.next_event(self._config.event_deadline)

    def events(self) -> AsyncIterator[Event]:
        """Events until the disconnect-notice or EOF; each wait bounded by ``event_deadline``."""
        return self._conn.iter_events(self._config.event_deadline)


Handler = Callable[[OutboundSession], Awaitable[None]]


def random_uuid() -> str:
    """A random (version 4) UUID as ``str(uuid.uuid4())`` spells it, for an Event-UUID: it matches a
    command to its CHANNEL_EXECUTE_COMPLETE on one connection, so it must be unique there, not secret
    (the random module's generator, reseeded in a forked worker; no system call, no UUID object)."""
    value = random.getrandbits(128) & ~(0xC000 << 48 | 0xF000 << 64) | 0x8000 << 48 | 4 << 76
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class OutboundServer(SessionServer):
    """The outbound-socket server: ``handler(session)`` once per call, after ``connect``."""

    def __init__(
        self,
        handler: Handler,
        config: OutboundConfig | None = None,
        *,
        server_limits: ServerLimits | None = None,
        uuid_factory: Callable[[], str] | None = None,
    ) -> None:
        self._handler = handler
        self._config = config if config is not None else OutboundConfig()
        self._uuid_factory = uuid_factory if uuid_factory is not None else random_uuid
        self._ids = itertools.count(1)
        super().__init__("esl", self._run_session, host=self._config.host, port=self._config.port,
                         limits=server_limits, refuse=self._refuse_call)

    def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    log: structlog.typing.FilteringBoundLogger) -> EslConnection:
        cfg = self._config
        return EslConnection(reader, writer, limits=cfg.limits, max_queued_events=cfg.max_queued_events,
                             max_queued_bytes=cfg.max_queued_bytes, log=log)

    async def _refuse_call(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer,
                      reason: str) -> None:
        """``connect``, then close: FreeSWITCH goes on to the dialplan's reject (bounded in time)."""
        cfg = self._config
        log = self._log.bind(session=next(self._ids), peer=peer.remote, reason=reason)
        conn = self._connection(reader, writer, log)
        unique_id: str | None = None
        try:
            conn.start()
            reply = await conn.command(commands.connect(), cfg.connect_deadline)
            unique_id = ChannelData.from_reply(reply).unique_id
        except (EslError, TimeoutError) as exc:
            log.warning("esl.session.refusal_failed", error=str(exc), error_type=type(exc).__name__)
        finally:
            await conn.close(cfg.close_deadline)
        if unique_id is not None:
            log.info("esl.session.refused", unique_id=unique_id, fallback="dialplan rejects")

    async def _run_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> str:
        cfg = self._config
        log = self._log.bind(session=next(self._ids), peer=peer.remote)
        conn = self._connection(reader, writer, log)
        started = time.monotonic()
        outcome = "ok"
        try:
            async with asyncio.timeout(cfg.session_deadline):
                conn.start()
                reply = await conn.command(commands.connect(), cfg.connect_deadline)
                channel = ChannelData.from_reply(reply)
                log = log.bind(unique_id=channel.unique_id, destination=channel.destination_number)
                log.info("esl.session.connected")
                await self._handler(OutboundSession(conn, channel, cfg, log, self._uuid_factory))
        except EslProtocolError as exc:
            outcome = "protocol_error"
            log.warning("esl.session.protocol_error", error=str(exc), error_type=type(exc).__name__)
        except TimeoutError as exc:  # EslTimeoutError is one
            outcome = "timeout"
            log.warning("esl.session.timeout", error=str(exc))
        except EslConnectionClosed as exc:
            outcome = "peer_closed"
            log.info("esl.session.peer_closed", error=str(exc))
        except CommandError as exc:
            outcome = "command_error"
            log.warning("esl.session.command_error", command=exc.command, reply=exc.reply_text)
        except EslError as exc:
            outcome = "esl_error"
            log.warning("esl.session.esl_error", error=str(exc), error_type=type(exc).__name__)
        except asyncio.CancelledError:
            outcome = "cancelled"
            log.info("esl.session.cancelled")
            raise
        except Exception:  # the handler's bug must not take the server down
            outcome = "handler_error"
            log.exception("esl.session.handler_error")
        finally:
            await conn.close(cfg.close_deadline)
            log.info(
                "esl.session.closed",
                outcome=outcome,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
                dropped_events=conn.dropped_events,
            )
        return outcome
