"""One event-socket connection over asyncio streams, shared by outbound and inbound.

The transport hands each chunk to the decoder as it arrives (:class:`TransportFeed`; a reader task
reads a stream that already held bytes when the connection started), and the frames are routed:

* ``command/reply`` and ``api/response`` resolve the single in-flight command
  (commands are serialised by a lock, so FIFO order is the protocol's order);
* ``text/event-*`` go to an event queue bounded in count and in bytes (the
  oldest are dropped on overflow) and wake anyone waiting for a
  ``CHANNEL_EXECUTE_COMPLETE`` with a given ``Application-UUID``;
* ``text/disconnect-notice`` ends the event stream and fails execute waiters;
* ``auth/request`` resolves :meth:`wait_auth_request`.

Any failure (EOF, protocol error, a command deadline) poisons the connection:
pending waiters get the error and later calls raise it at once.  A timed-out
command leaves reply ordering unknown, so the connection is not reused.

Nothing outlives :meth:`close`: the queued events are dropped, and the stored
failure keeps no traceback, context or cause (their frames would hold the
connection, its queue and the decoder's buffers as cyclic garbage that only a
full collection frees: issue 11 item 11).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import structlog

from dncgate.esl.codec import EslDecoder, Limits
from dncgate.esl.errors import (
    AccessDeniedError,
    EslConnectionClosed,
    EslError,
    EslTimeoutError,
    UnexpectedMessageError,
)
from dncgate.esl.messages import (
    API_RESPONSE,
    AUTH_REQUEST,
    COMMAND_REPLY,
    DISCONNECT_NOTICE,
    RUDE_REJECTION,
    Event,
    Message,
)
from dncgate.esl.transport import TransportFeed

_READ_CHUNK = 64 * 1024
_END = object()
MAX_QUEUED_BYTES = 1 << 20  # per connection: the check handler waits for a few small events


def forget_frames(error: BaseException) -> None:
    """Drop what a stored exception refers to beyond itself: its traceback, context and cause."""
    error.__traceback__ = None
    error.__context__ = None
    error.__cause__ = None


class EslConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        limits: Limits,
        max_queued_events: int = 1000,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        log: structlog.typing.FilteringBoundLogger | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = EslDecoder(limits)
        self._log = log if log is not None else structlog.get_logger()
        self._lock = asyncio.Lock()
        self._pending: deque[asyncio.Future[Message]] = deque()
        self._executes: dict[str, asyncio.Future[Event]] = {}
        self._events: deque[tuple[Event | object, int]] = deque()  # (event, its frame's body bytes)
        self._events_ready = asyncio.Event()
        self._max_events = max_queued_events
        self._max_bytes = max_queued_bytes
        self.queued_bytes = 0
        self._auth: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._failure: EslError | None = None
        self._ended = False  # the end marker is queued
        self._task: asyncio.Task[None] | None = None  # the reader task, when not fed by the transport
        self._feed: TransportFeed | None = None
        self.disconnect_notice: Message | None = None
        self.dropped_events = 0

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Start reading: frames are decoded as the transport delivers them (:class:`TransportFeed`),
        or, when the stream already holds bytes or its end, by a reader task from the stream."""
        if self._task is not None or self._feed is not None:
            return
        transport = self._writer.transport
        inner = transport.get_protocol()
        reader = self._reader
        if (isinstance(inner, asyncio.StreamReaderProtocol) and not getattr(reader, "_buffer", b"?")
                and not reader.at_eof() and reader.exception() is None):
            self._feed = TransportFeed(self, inner)
            transport.set_protocol(self._feed)
        else:
            self._task = asyncio.create_task(self._read_loop(), name="esl-reader")

    @property
    def failure(self) -> EslError | None:
        return self._failure

    @property
    def closed(self) -> bool:
        return self._failure is not None

    async def close(self, deadline: float = 1.0) -> None:
        """Stop reading, drop what is queued and close the socket (idempotent, bounded)."""
        self._fail(EslConnectionClosed("connection closed locally"))
        if self._feed is not None:
            self._feed.detach()  # nothing more is read; the transport's close still reaches the stream
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._events.clear()
        self._events.append((_END, 0))
        self.queued_bytes = 0
        if self._failure is not None:
            forget_frames(self._failure)  # raised since it was stored: its new traceback goes too
        if not self._writer.is_closing():
            self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(deadline):
                await self._writer.wait_closed()

    def _fail(self, error: EslError) -> None:
        if self._failure is not None:
            return
        forget_frames(error)
        self._failure = error
        if not self._auth.done():
            self._auth.set_exception(error)
            self._auth.exception()  # mark retrieved: nobody may be waiting
        while self._pending:
            fut = self._pending.popleft()
            if not fut.done():
                fut.set_exception(error)
        self._fail_executes(error)
        self._end_events()

    def _fail_executes(self, error: EslError) -> None:
        executes, self._executes = self._executes, {}
        for fut in executes.values():
            if not fut.done():
                fut.set_exception(error)

    # -- reading ---------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Bytes from the transport (:class:`TransportFeed`): what the reader task does with each read."""
        if (error := self._take(data)) is not None:
            self._feed_ended(error)

    def input_ended(self, exc: Exception | None) -> None:
        """The transport's end of input: EOF (``exc`` None) or a failed read."""
        self._feed_ended(EslConnectionClosed(f"read failed: {exc}") if exc is not None else self._end_of_input())

    def _take(self, data: bytes) -> EslError | None:
        """Decode and dispatch ``data``; the error that ends reading, if it does."""
        try:
            for message in self._decoder.feed(data):
                self._dispatch(message)
        except EslError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a reader bug must fail waiters, not strand them
            self._log.exception("esl.reader.crashed")
            return EslError(f"reader crashed: {exc!r}")
        return None

    def _end_of_input(self) -> EslError:
        """Why reading ended at EOF: a frame cut short, else the peer's close."""
        try:
            self._decoder.feed_eof()
        except EslError as error:
            return error
        return EslConnectionClosed("peer closed the connection")

    def _feed_ended(self, error: EslError) -> None:
        """Reading stops, as the reader task's loop ends: the connection fails with ``error``."""
        if self._feed is not None:
            self._feed.detach()
        self._fail(error)

    async def _read_loop(self) -> None:
        error: EslError | None = None
        while error is None:
            try:
                data = await self._reader.read(_READ_CHUNK)
            except OSError as exc:
                error = EslConnectionClosed(f"read failed: {exc}")
            except Exception as exc:  # noqa: BLE001 - a reader bug must fail waiters, not strand them
                self._log.exception("esl.reader.crashed")
                error = EslError(f"reader crashed: {exc!r}")
            else:
                error = self._take(data) if data else self._end_of_input()
        self._fail(error)

    def _dispatch(self, message: Message) -> None:
        kind = message.content_type
        if message.event is not None:
            self._on_event(message.event, len(message.body))
        elif kind in (COMMAND_REPLY, API_RESPONSE):
            if not self._pending:
                raise UnexpectedMessageError(f"{kind} with no command in flight: {message.reply_text!r}")
            fut = self._pending.popleft()
            if not fut.done():
                fut.set_result(message)
        elif kind == DISCONNECT_NOTICE:
            self.disconnect_notice = message
            self._fail_executes(EslConnectionClosed("disconnect-notice received"))
            self._end_events()
        elif kind == AUTH_REQUEST:
            if not self._auth.done():
                self._auth.set_result(message)
        elif kind == RUDE_REJECTION:
            raise AccessDeniedError(message.body_text.strip() or "rude rejection")
        else:
            self._log.debug("esl.message.ignored", content_type=kind)

    def _end_events(self) -> None:
        """Mark the end of the event stream (once); nothing queued after it is ever read."""
        if not self._ended:
            self._ended = True
            self._events.append((_END, 0))
            self._events_ready.set()

    def _on_event(self, event: Event, size: int) -> None:
        if self._ended:
            # After a failure or a disconnect-notice the reader may still see events (a late
            # reply, linger mode); queueing them could push the end marker out of a full queue.
            self.dropped_events += 1
            return
        if event.name == "CHANNEL_EXECUTE_COMPLETE" and event.application_uuid:
            fut = self._executes.pop(event.application_uuid, None)
            if fut is not None and not fut.done():
                fut.set_result(event)
        if size > self._max_bytes:  # alone over the byte cap: never queued
            self.dropped_events += 1
            return
        while self._events and (len(self._events) >= self._max_events
                                or self.queued_bytes + size > self._max_bytes):
            _, dropped = self._events.popleft()
            self.queued_bytes -= dropped
            self.dropped_events += 1
        self._events.append((event, size))
        self.queued_bytes += size
        self._events_ready.set()

    # -- API -------------------------------------------------------------

    async def wait_auth_request(self, deadline: float) -> Message:
        try:
            async with asyncio.timeout(deadline):
                return await asyncio.shield(self._auth)
        except TimeoutError:
            error = EslTimeoutError(f"no auth/request within {deadline}s")
            self._fail(error)
            raise error from None

    async def command(self, data: bytes, deadline: float) -> Message:
        """Send one command and wait (bounded) for its reply: one deadline for the write and the reply."""
        [outcome] = await self.pipeline((data,), deadline)
        if isinstance(outcome, EslError):
            raise outcome
        return outcome

    async def pipeline(self, datas: Sequence[bytes], deadline: float) -> list[Message | EslError]:
        """Send commands in one write, then wait for their replies in order, all within ``deadline``
        of the write.  Each outcome is its command's reply or the error that ended the wait for it
        (a timeout, the connection lost: the connection is failed, the later commands get an error
        too).  A write that fails or a cancelled wait raises, as for one command.

        mod_event_socket (1.11.1 ``read_packet``) reads a command a byte at a time and answers it
        before it reads the next, so pipelined commands are run and answered in order, as if each
        had been sent after the reply to the one before."""
        async with self._lock:
            if self._failure is not None:
                raise self._failure
            loop = asyncio.get_running_loop()
            futs: list[asyncio.Future[Message]] = [loop.create_future() for _ in datas]
            self._pending.extend(futs)
            when = loop.time() + deadline
            timer = loop.call_at(when, _expire_all, futs)  # one deadline for them all: no cancel scope, one timer
            try:
                self._writer.write(b"".join(datas))
                await self._drain(when)
                return [await self._reply(fut, data, deadline) for fut, data in zip(futs, datas, strict=True)]
            except TimeoutError:  # the write did not drain in time
                error = EslTimeoutError(f"no reply to {_first_line(datas[0])!r} within {deadline}s")
                self._fail(error)
                raise error from None
            except OSError as exc:
                closed = EslConnectionClosed(f"write failed: {exc}")
                self._fail(closed)
                raise closed from exc
            except asyncio.CancelledError:
                self._fail(EslConnectionClosed("command cancelled; reply order lost"))
                raise
            finally:
                timer.cancel()
                for fut in futs:
                    # A failure while writing (a reset peer) sets the connection's error on ``fut`` too,
                    # unawaited: mark it retrieved, or the loop logs "Future exception was never retrieved".
                    if fut.done() and not fut.cancelled():
                        fut.exception()

    async def _reply(self, fut: asyncio.Future[Message], data: bytes, deadline: float) -> Message | EslError:
        """The reply ``fut`` brings, or the error that ended the wait for it."""
        try:
            return await fut
        except TimeoutError:
            error = EslTimeoutError(f"no reply to {_first_line(data)!r} within {deadline}s")
            self._fail(error)
            return error
        except EslError as exc:  # the connection failed (closed, a protocol error): set by _fail
            return exc

    async def _drain(self, when: float) -> None:
        """``drain()``, bounded by ``when`` if the write paused the transport (a peer not reading);
        otherwise it returns at once (raising if the connection was lost)."""
        transport = self._writer.transport
        if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            async with asyncio.timeout_at(when):
                await self._writer.drain()
        else:
            await self._writer.drain()

    async def send_and_wait_execute(
        self, data: bytes, event_uuid: str, reply_deadline: float, complete_deadline: float,
        *, before: Sequence[bytes] = (), on_replies: Callable[[list[Message | EslError]], None] | None = None,
    ) -> tuple[Message, Event]:
        """Send a sendmsg execute and wait for its CHANNEL_EXECUTE_COMPLETE.

        ``before``: commands sent ahead of the execute in the same write (:meth:`pipeline`);
        ``on_replies`` gets their outcomes once the execute's reply is in, before the wait for the
        completion.  An error that ended the wait for the execute's reply is raised after it (a
        failed ``before`` command failed the connection: the execute's reply is that error too)."""
        if self._failure is not None:
            raise self._failure
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Event] = loop.create_future()
        self._executes[event_uuid] = done
        timer: asyncio.TimerHandle | None = None
        try:
            *outcomes, reply = await self.pipeline((*before, data), reply_deadline)
            if on_replies is not None:
                on_replies(outcomes)
            if isinstance(reply, EslError):  # the first failed command's error, as if sent alone
                raise next((o for o in outcomes if isinstance(o, EslError)), reply)
            if not reply.ok:
                return reply, Event("plain", reply.headers)
            timer = loop.call_later(complete_deadline, _expire, done)
            try:
                return reply, await done
            except TimeoutError:
                raise EslTimeoutError(f"no CHANNEL_EXECUTE_COMPLETE within {complete_deadline}s") from None
        finally:
            if timer is not None:
                timer.cancel()
            self._executes.pop(event_uuid, None)
            if done.done() and not done.cancelled():
                done.exception()  # retrieved; avoid "exception never retrieved"
            else:
                done.cancel()

    async def next_event(self, deadline: float | None) -> Event | None:
        """The next queued event; None after a disconnect-notice; raises if the stream broke."""
        if not self._events:
            try:
                async with asyncio.timeout(deadline):
                    while not self._events:
                        self._events_ready.clear()
                        await self._events_ready.wait()
            except TimeoutError:
                raise EslTimeoutError(f"no event within {deadline}s") from None
        item, size = self._events[0]
        if item is _END:
            # Leave the marker: the stream stays ended.  A disconnect-notice is a
            # clean end; EOF or a protocol error without one is reported.
            if self.disconnect_notice is None and self._failure is not None:
                raise self._failure
            return None
        self._events.popleft()
        self.queued_bytes -= size
        assert isinstance(item, Event)
        return item

    async def iter_events(self, deadline: float | None) -> AsyncIterator[Event]:
        while True:
            event = await self.next_event(deadline)
            if event is None:
                return
            yield event


def _expire(fut: asyncio.Future[Any]) -> None:
    """A deadline passed: the wait on ``fut`` ends in TimeoutError (nothing if it already ended)."""
    if not fut.done():
        fut.set_exception(TimeoutError())


def _expire_all(futs: Sequence[asyncio.Future[Any]]) -> None:
    """:func:`_expire` for each, in order."""
    for fut in futs:
        _expire(fut)


def _first_line(data: bytes) -> str:
    return data.split(b"\n", 1)[0].decode("utf-8", errors="replace")[:80]
