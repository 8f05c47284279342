"""One AGI session over any (reader, writer) pair: FastAGI sockets or classic AGI stdin/stdout.

:func:`run_session` is the per-session error boundary both entry points share: it reads the header
under a deadline, runs the handler, logs one line for whatever went wrong (a bad peer is a warning,
never a traceback), and always closes the writer itself, because Asterisk never closes a FastAGI
socket on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Protocol

import structlog

from dncgate.agi import commands as cmd
from dncgate.agi.codec import AgiDecoder, AgiReply, AgiRequest, HangupNotice
from dncgate.agi.errors import (
    AgiCommandError,
    AgiConnectionLost,
    AgiDeadChannel,
    AgiEncodingError,
    AgiError,
    AgiHangup,
    AgiInvalidCommand,
    AgiLimitExceeded,
    AgiProtocolError,
    AgiTimeout,
    AgiUsageError,
)
from dncgate.agi.limits import AgiLimits

__all__ = ["AgiHandler", "AgiSession", "ByteReader", "ByteWriter", "SessionOutcome", "run_session"]


class ByteReader(Protocol):
    """What a session reads from (asyncio.StreamReader fits)."""

    async def read(self, n: int = -1) -> bytes: ...


class ByteWriter(Protocol):
    """What a session writes to (asyncio.StreamWriter fits)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class _SilentPeer(AgiConnectionLost):
    """The peer closed before sending a byte: what health probes do, logged at debug."""


class SessionOutcome(enum.StrEnum):
    """How a session ended (returned by run_session, logged as ``outcome``)."""

    OK = "ok"
    PEER_GONE = "peer_gone"
    TIMEOUT = "timeout"
    PROTOCOL_ERROR = "protocol_error"
    HANGUP = "hangup"
    COMMAND_ERROR = "command_error"
    HANDLER_ERROR = "handler_error"
    CANCELLED = "cancelled"


_ERRORS_BY_CODE: dict[int, type[AgiCommandError]] = {
    510: AgiInvalidCommand,
    511: AgiDeadChannel,
    520: AgiUsageError,
}

Logger = Any  # structlog's BoundLogger proxy; typed loosely on purpose


class AgiSession:
    """An AGI conversation after the header block: send commands, read their replies.

    Commands are serialised (one in flight at a time). Each one is written and its whole reply read
    under one deadline (``limits.reply_timeout`` unless ``reply_timeout=`` is given). An unprompted
    ``HANGUP`` line sets :attr:`hung_up` and the pending reply is still returned. After a timeout,
    a protocol error or a lost connection the session is unusable and every further command raises.
    """

    def __init__(
        self,
        reader: ByteReader,
        writer: ByteWriter,
        request: AgiRequest,
        decoder: AgiDecoder,
        *,
        limits: AgiLimits,
        log: Logger,
    ) -> None:
        self.request = request
        self.limits = limits
        self.log = log
        self.hung_up = False
        self.commands_sent = 0
        self._reader = reader
        self._writer = writer
        self._decoder = decoder
        self._lock = asyncio.Lock()
        self._broken: AgiError | None = None
        self._after_close: list[Callable[[], None]] = []

    @classmethod
    async def from_streams(
        cls,
        reader: ByteReader,
        writer: ByteWriter,
        limits: AgiLimits | None = None,
        *,
        log: Logger | None = None,
    ) -> AgiSession:
        """Read the header block (under ``limits.header_timeout``) and return a ready session.

        Raises AgiTimeout, AgiConnectionLost or AgiProtocolError. Does not close the writer.
        """
        limits = limits or AgiLimits()
        decoder = AgiDecoder(limits)
        try:
            async with asyncio.timeout(limits.header_timeout):
                while (request := decoder.read_header()) is None:
                    await _read_more(reader, decoder, limits.read_chunk)
        except TimeoutError as exc:
            raise AgiTimeout(
                f"no complete header within {limits.header_timeout}s", phase="header",
                timeout=limits.header_timeout,
            ) from exc
        except AgiConnectionLost as exc:
            if not decoder.header_started:  # a connect-and-close probe (a load balancer, a monitor)
                raise _SilentPeer(f"closed before sending anything: {exc}") from None
            raise
        return cls(reader, writer, request, decoder, limits=limits,
                   log=log if log is not None else structlog.get_logger())

    def after_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the session's socket is closed (work that must not delay the call).

        run_session runs it on the loop's turn after the close, whatever way the session ended; an
        exception it raises is logged as ``agi.session.after_close_failed``.
        """
        self._after_close.append(callback)

    # -- generic ---------------------------------------------------------------------------------

    async def command(self, line: str, *, reply_timeout: float | None = None, check: bool = True) -> AgiReply:
        """Send one raw command line and return Asterisk's reply.

        ``reply_timeout`` overrides ``limits.reply_timeout`` for this command (e.g. a long Playback).
        With ``check`` (the default) a non-200 reply raises the matching AgiCommandError subclass
        (510 AgiInvalidCommand, 511 AgiDeadChannel, 520 AgiUsageError); those leave the session usable.
        """
        data = cmd.encode_line(line)
        limit = self.limits.reply_timeout if reply_timeout is None else reply_timeout
        async with self._lock:
            if self._broken is not None:
                raise AgiConnectionLost(f"session unusable after earlier error: {self._broken}")
            try:
                async with asyncio.timeout(limit):
                    self._writer.write(data)
                    await self._writer.drain()
                    self.commands_sent += 1
                    reply = await self._read_reply()
            except TimeoutError as exc:
                self._broken = AgiTimeout(
                    f"no reply to {_verb(line)} within {limit}s", phase="reply", timeout=limit,
                )
                raise self._broken from exc
            except ConnectionError as exc:
                self._broken = AgiConnectionLost(f"connection lost during {_verb(line)}: {exc!r}")
                raise self._broken from exc
            except (AgiProtocolError, AgiConnectionLost) as exc:
                self._broken = exc
                raise
            except asyncio.CancelledError:
                # Cancelled mid-exchange (e.g. an outer asyncio.timeout): the reply may still arrive
                # and would be taken for the next command's, so the session cannot be used again.
                self._broken = AgiConnectionLost(f"cancelled while waiting for the reply to {_verb(line)}")
                raise
        if reply.code == 511:
            self.hung_up = True
        if check and reply.code != 200:
            raise _ERRORS_BY_CODE.get(reply.code, AgiCommandError)(reply, _verb(line))
        return reply

    async def _read_reply(self) -> AgiReply:
        while True:
            event = self._decoder.next_event()
            if isinstance(event, HangupNotice):
                if not self.hung_up:
                    self.log.info("agi.session.hangup_notice")
                self.hung_up = True
                continue
            if event is not None:
                return event
            await _read_more(self._reader, self._decoder, self.limits.read_chunk)

    # -- typed helpers ---------------------------------------------------------------------------

    async def get_variable(self, name: str, *, reply_timeout: float | None = None) -> str | None:
        """Value of a channel variable or function (``CALLERID(num)``); None if it is not set."""
        reply = await self.command(cmd.get_variable(name), reply_timeout=reply_timeout)
        return reply.data if reply.result == 1 else None

    async def get_full_variable(
        self, expression: str, channel: str | None = None, *, reply_timeout: float | None = None,
    ) -> str | None:
        """Asterisk's substitution of ``expression`` (e.g. ``"${EXTEN}"``); None if the channel is unknown."""
        reply = await self.command(cmd.get_full_variable(expression, channel), reply_timeout=reply_timeout)
        return reply.data if reply.result == 1 else None

    async def set_variable(self, name: str, value: str, *, reply_timeout: float | None = None) -> None:
        """Set a channel variable; ``value`` is sent literally (quoted; CR/LF become blanks)."""
        await self.command(cmd.set_variable(name, value), reply_timeout=reply_timeout)

    async def exec(self, app: str, args: str = "", *, reply_timeout: float | None = None) -> int:
        """Run a dialplan application; returns its result (-2: no such application)."""
        reply = await self.command(cmd.exec_app(app, args), reply_timeout=reply_timeout)
        return _result(reply)

    async def verbose(self, message: str, level: int = 1, *, reply_timeout: float | None = None) -> None:
        await self.command(cmd.verbose(message, level), reply_timeout=reply_timeout)

    async def stream_file(
        self, filename: str, escape_digits: str = "", offset: int | None = None, *, reply_timeout: float | None = None,
    ) -> AgiReply:
        return await self.command(cmd.stream_file(filename, escape_digits, offset), reply_timeout=reply_timeout)

    async def noop(self, text: str = "", *, reply_timeout: float | None = None) -> None:
        await self.command(cmd.noop(text), reply_timeout=reply_timeout)

    async def hangup(self, channel: str | None = None, *, reply_timeout: float | None = None) -> int:
        reply = await self.command(cmd.hangup(channel), reply_timeout=reply_timeout)
        return _result(reply)

    async def aclose(self) -> None:
        """Close our side of the connection (run_session does this for you)."""
        await _close_writer(self._writer, self.limits.close_timeout)


AgiHandler = Callable[[AgiSession], Awaitable[None]]


def _result(reply: AgiReply) -> int:
    if reply.result is None:
        raise AgiProtocolError(f"reply without a numeric result: {reply.lines!r}")
    return reply.result


def _verb(line: str) -> str:
    """The command words for logs, without arguments (values may be private)."""
    words = line.split(" ", 3)
    if len(words) > 1 and words[0] in {"GET", "SET", "STREAM", "CHANNEL", "DATABASE", "SPEECH", "CONTROL"}:
        return " ".join(words[:3] if words[1] == "FULL" else words[:2])
    return words[0]


async def _read_more(reader: ByteReader, decoder: AgiDecoder, chunk: int) -> None:
    try:
        data = await reader.read(chunk)
    except ConnectionError as exc:
        raise AgiConnectionLost(f"connection broken: {exc!r}") from exc
    if data:
        decoder.feed(data)
    else:
        decoder.feed_eof()


async def _close_writer(writer: ByteWriter, limit: float, then: Sequence[Callable[[], None]] = ()) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        writer.close()
    # Queued behind the transport's own close callback, so the peer sees EOF first.
    loop = asyncio.get_running_loop()
    for callback in then:
        loop.call_soon(callback)
    transport = getattr(writer, "transport", None)
    if isinstance(transport, asyncio.WriteTransport) and transport.get_write_buffer_size() == 0:
        # Nothing left to send: the transport's close already queued connection_lost for the loop's
        # next turn, so this wait is bounded without a deadline of its own.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    try:
        async with asyncio.timeout(limit):
            await writer.wait_closed()
    except TimeoutError:
        transport = getattr(writer, "transport", None)
        if transport is not None:
            transport.abort()
    except OSError:
        pass


async def run_session(
    reader: ByteReader,
    writer: ByteWriter,
    handler: AgiHandler,
    limits: AgiLimits | None = None,
    *,
    remote: str = "",
) -> SessionOutcome:
    """Read the header, run ``handler``, close the writer; never raises except CancelledError.

    Logs at most one warning/error line per failure, with event names ``agi.session.*`` and the
    bound context ``remote``, ``uniqueid``, ``channel``.
    """
    limits = limits or AgiLimits()
    log = structlog.get_logger().bind(remote=remote)
    started = time.monotonic()
    session: AgiSession | None = None
    outcome = SessionOutcome.OK
    try:
        session = await AgiSession.from_streams(reader, writer, limits, log=log)
        req = session.request
        log = session.log = log.bind(uniqueid=req.uniqueid, channel=req.channel)
        log.debug("agi.session.started", script=req.script)
        await _run_handler(session, handler, limits.session_timeout)
    except asyncio.CancelledError:
        log.warning("agi.session.cancelled")
        outcome = SessionOutcome.CANCELLED
        raise
    except Exception as exc:  # noqa: BLE001 - this is the per-session error boundary
        outcome = _log_failure(log, exc, session)
    finally:
        after = [partial(_guarded, log, cb) for cb in session._after_close] if session is not None else []
        await _close_writer(writer, limits.close_timeout, then=after)
        log.debug(
            "agi.session.finished", outcome=str(outcome),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            commands=session.commands_sent if session is not None else 0,
        )
    return outcome


async def _run_handler(session: AgiSession, handler: AgiHandler, limit: float | None) -> None:
    if limit is None:  # no session deadline: each read has its own
        await handler(session)
        return
    try:
        async with asyncio.timeout(limit) as cm:
            await handler(session)
    except TimeoutError as exc:
        if cm.expired() and not isinstance(exc, AgiTimeout):
            raise AgiTimeout(f"handler ran longer than {limit}s", phase="session", timeout=limit or 0.0) from exc
        raise


def _guarded(log: Logger, callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception as exc:
        log.error("agi.session.after_close_failed", error=repr(exc), exc_info=exc)


def _log_failure(log: Logger, exc: Exception, session: AgiSession | None) -> SessionOutcome:
    phase = "header" if session is None else "session"
    if isinstance(exc, AgiEncodingError):
        log.error("agi.session.handler_error", error=str(exc), exc_info=exc)
        return SessionOutcome.HANDLER_ERROR
    if isinstance(exc, AgiTimeout):
        log.warning("agi.session.timeout", phase=exc.phase, timeout=exc.timeout, error=str(exc))
        return SessionOutcome.TIMEOUT
    if isinstance(exc, AgiConnectionLost):
        say = log.debug if isinstance(exc, _SilentPeer) else log.warning
        say("agi.session.peer_gone", phase=phase, error=str(exc))
        return SessionOutcome.PEER_GONE
    if isinstance(exc, AgiLimitExceeded):
        log.warning("agi.session.protocol_error", phase=phase, error=str(exc), limit=exc.limit,
                    value=exc.value, maximum=exc.maximum)
        return SessionOutcome.PROTOCOL_ERROR
    if isinstance(exc, AgiProtocolError):
        log.warning("agi.session.protocol_error", phase=phase, error=str(exc))
        return SessionOutcome.PROTOCOL_ERROR
    if isinstance(exc, AgiHangup):
        log.info("agi.session.hangup", error=str(exc))
        return SessionOutcome.HANGUP
    if isinstance(exc, AgiCommandError):
        log.warning("agi.session.command_error", code=exc.code, command=exc.command, error=str(exc))
        return SessionOutcome.COMMAND_ERROR
    log.error("agi.session.handler_error", error=repr(exc), exc_info=exc)
    return SessionOutcome.HANDLER_ERROR
