"""Asterisk Manager Interface client: an adapter over panoramisk's ``Manager``.

panoramisk does the AMI framing, action/response matching and event dispatch. This module owns what
panoramisk does not do well for a long-running feed:

* connecting under our deadline (``loop.create_connection`` + Login, both inside ``connect_timeout``)
  and typed errors: :class:`AmiUnavailable`, :class:`AmiLoginError`, :class:`AmiTimeout`,
  :class:`AmiActionError`;
* reconnecting with exponential backoff and jitter. panoramisk's own fixed ``call_later`` reconnect
  and pinger are switched off (``_Manager`` overrides ``connection_lost`` and ``ping``); our
  supervisor task reconnects, and a keepalive Ping with a deadline detects a half-open connection;
* actions never silently resent: panoramisk queues unanswered actions and resends them after the next
  ``FullyBooted``; we fail them with :class:`AmiConnectionLost` instead (an Originate must not run twice);
* a noise filter (TestEvent, VarSet, Newexten, ...) before events reach listeners.

Asterisk sleeps one second before answering a refused Login, then closes the connection, so
``connect_timeout`` must stay above 1 s for bad credentials to surface as :class:`AmiLoginError`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from dncgate.ami.errors import (
    AmiActionError,
    AmiConnectionLost,
    AmiEncodingError,
    AmiError,
    AmiLoginError,
    AmiTimeout,
    AmiUnavailable,
)
from dncgate.ami.message import AmiMessage, AmiResponse
from dncgate.ami.settings import AmiSettings
from dncgate.backoff import Backoff, BackoffPolicy

__all__ = ["AmiClient", "AmiSettings", "Backoff", "BackoffPolicy", "EventListener", "StateListener"]

EventListener = Callable[[AmiMessage], None]
StateListener = Callable[[str, str], None]  # ("connected", "") or ("down", why)
ActionValue = str | int | Sequence[str]


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol plus a close waiter and a hook telling the client which connection died."""

    on_lost: Callable[[_Protocol, BaseException | None], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.closed_waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: BaseException | None) -> None:
        # panoramisk: when we closed it ourselves (``closed``) the factory is not told.
        super().connection_lost(exc)
        if not self.closed_waiter.done():
            self.closed_waiter.set_result(None)
        if self.on_lost is not None:
            self.on_lost(self, exc)


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its fixed reconnect, its pinger or its resend-after-reconnect."""

    authenticated_future: Any
    pinger: Any

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("AmiClient opens connections itself")

    def ping(self) -> None:
        self.pinger = None

    def login(self, future: asyncio.Future[Any]) -> bool:
        if future.cancelled() or future.exception() is not None:
            self.authenticated_future = None
            return False
        return bool(super().login(future))

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connected = False
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None
        self.awaiting_actions.clear()


class AmiClient:
    """One AMI connection with reconnects; events go to listeners, actions return :class:`AmiResponse`.

    ``async with AmiClient(settings) as ami`` connects (raising on bad credentials or an unreachable
    Asterisk) and closes on exit. A long-running feed calls :meth:`start` instead: it connects in the
    background and keeps trying, and ``on_state`` hears every connect, loss and failed attempt.
    """

    def __init__(
        self,
        settings: AmiSettings,
        *,
        backoff: BackoffPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_state: StateListener | None = None,
    ) -> None:
        self.settings = settings
        self._on_state = on_state
        self.backoff: BackoffPolicy = backoff or Backoff(
            initial=settings.backoff_base, maximum=settings.backoff_max, jitter=settings.backoff_jitter
        )
        self._sleep = sleep
        self._log = structlog.get_logger("dncgate.ami").bind(ami_host=settings.host, ami_port=settings.port)
        self._manager: _Manager | None = None
        self._live: _Protocol | None = None
        self._lost = asyncio.Event()
        self._listeners: list[EventListener] = []
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self.connects = 0  # successful logins, including reconnects
        self.filtered = 0  # events dropped by the noise filter
        self.failed_events = 0  # events a listener raised on (logged as ami.listener_failed)

    # ------------------------------------------------------------------ state
    @property
    def connected(self) -> bool:
        return self._live is not None

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` for every non-noise event, synchronously; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def events(self, buffer: int = 1000) -> AsyncIterator[AmiMessage]:
        """Iterate events; a consumer that falls ``buffer`` behind loses the oldest (logged)."""
        queue: asyncio.Queue[AmiMessage] = asyncio.Queue(buffer)

        def put(event: AmiMessage) -> None:
            if queue.full():
                queue.get_nowait()
                self._log.warning("ami.consumer_lagging", event_name=event.event)
            queue.put_nowait(event)

        remove = self.add_listener(put)
        try:
            while True:
                yield await queue.get()
        finally:
            remove()

    # ------------------------------------------------------------------ connect
    async def connect(self) -> None:
        """Connect and log in once, then keep reconnecting in the background until :meth:`close`."""
        if self._closing:
            raise AmiUnavailable("client is closed")
        if self._supervisor is not None:
            return
        await self._open()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="ami-supervisor")

    def start(self) -> None:
        """Connect in the background, at once and then with backoff, until :meth:`close`; never raises
        for an unreachable Asterisk or refused credentials (``on_state`` and the log say so)."""
        if self._closing:
            raise AmiUnavailable("client is closed")
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(at_once=True), name="ami-supervisor")

    async def _open(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        manager = self._manager
        if manager is None:
            manager = self._manager = _Manager(
                host=s.host, port=s.port, username=s.username, secret=s.secret, events=s.events, loop=loop
            )
            manager.register_event("*", self._on_panoramisk_event)
        protocol: _Protocol | None = None
        try:
            async with asyncio.timeout(s.connect_timeout):
                _, protocol = await loop.create_connection(_Protocol, s.host, s.port)
                protocol.on_lost = self._on_protocol_lost
                done: asyncio.Future[tuple[Any, _Protocol]] = loop.create_future()
                done.set_result((protocol.transport, protocol))
                manager.connection_made(done)  # panoramisk sets the protocol up and sends Login
                login: asyncio.Future[Any] = manager.authenticated_future
                await asyncio.wait([login, protocol.closed_waiter], return_when=asyncio.FIRST_COMPLETED)
                if not login.done():
                    raise AmiUnavailable(f"AMI at {s.host}:{s.port} closed the connection before answering Login")
                reply = login.result()
        except AmiError:
            self._discard(protocol)
            raise
        except TimeoutError:
            self._discard(protocol)
            stage = "connect" if protocol is None else "login"
            raise AmiUnavailable(f"AMI {stage} at {s.host}:{s.port} took over {s.connect_timeout}s") from None
        except OSError as exc:
            raise AmiUnavailable(f"AMI connect to {s.host}:{s.port} failed: {exc}") from exc
        except asyncio.CancelledError:  # close() while reconnecting: do not leave a half-open socket
            self._discard(protocol)
            raise
        if not reply.success:
            self._discard(protocol)
            message = str(reply.get("Message", "") or reply.get("Response", ""))
            self._log.error("ami.login_failed", username=s.username, reply=message)
            raise AmiLoginError(message)
        if protocol.closed:  # dropped between the Login response and now
            raise AmiConnectionLost("AMI connection closed right after login")
        self._live = protocol
        self._lost.clear()
        self.connects += 1
        self._log.info("ami.connected", username=s.username, version=protocol.version, connects=self.connects)
        self._tell("connected", "")

    def _discard(self, protocol: _Protocol | None) -> None:
        if protocol is not None:
            protocol.on_lost = None
            protocol.close()

    # ------------------------------------------------------------------ disconnect / reconnect
    def _on_protocol_lost(self, protocol: _Protocol, exc: BaseException | None) -> None:
        if protocol is self._live:
            self._mark_lost("connection_lost" if exc is None else f"{type(exc).__name__}: {exc}")

    def _mark_lost(self, reason: str) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        live.on_lost = None
        live.close()
        for action_id, future in list(self._pending.items()):
            if not future.done():
                future.set_exception(AmiConnectionLost(f"connection lost before the response to {action_id}"))
        if self._manager is not None:
            self._manager.awaiting_actions.clear()
        if not self._closing:
            self._log.warning("ami.disconnected", reason=reason)
            self._tell("down", reason)
        self._lost.set()

    def _tell(self, state: str, why: str) -> None:
        if self._on_state is not None:
            self._on_state(state, why)

    async def _supervise(self, *, at_once: bool = False) -> None:
        while not self._closing:
            await self._wait_lost_or_keepalive()
            attempt = 0
            while not self._closing and self._live is None:
                if not at_once:
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    self._log.info("ami.reconnecting", attempt=attempt, delay_s=round(delay, 3))
                    await self._sleep(delay)
                at_once = False
                try:
                    await self._open()
                except AmiLoginError as exc:
                    # logged as ami.login_failed; credentials may be fixed, keep trying at the backoff cap
                    self._tell("down", str(exc))
                except AmiUnavailable as exc:
                    self._log.warning("ami.connect_failed", attempt=attempt, error=str(exc))
                    self._tell("down", str(exc))

    async def _wait_lost_or_keepalive(self) -> None:
        interval = self.settings.keepalive_interval
        while self._live is not None:
            try:
                async with asyncio.timeout(interval):
                    await self._lost.wait()
            except TimeoutError:
                try:
                    await self.action({"Action": "Ping"})
                except AmiConnectionLost:
                    pass
                except AmiError as exc:
                    self._log.warning("ami.keepalive_failed", error=str(exc), error_type=type(exc).__name__)
                    self._mark_lost("keepalive")

    # ------------------------------------------------------------------ events
    def _on_panoramisk_event(self, _manager: Any, message: Any) -> None:
        event = AmiMessage.from_panoramisk(message)
        if event.event in self.settings.noise:
            self.filtered += 1
            return
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - one broken consumer must not stop the feed
                self.failed_events += 1
                self._log.exception("ami.listener_failed", event_name=event.event)

    # ------------------------------------------------------------------ actions
    async def action(self, action: Mapping[str, ActionValue], timeout: float | None = None) -> AmiResponse:
        """Send one action and wait for its complete response under ``timeout`` (default ``action_timeout``).

        Raises :class:`AmiTimeout`, :class:`AmiActionError` (``Response: Error``),
        :class:`AmiConnectionLost`, :class:`AmiUnavailable` or :class:`AmiEncodingError`.
        """
        fields = _encode(action)
        name = fields.get("Action")
        if not isinstance(name, str) or not name:
            raise AmiEncodingError("an action needs an Action field")
        live, manager = self._live, self._manager
        if live is None or manager is None:
            raise AmiUnavailable("AMI is not connected" if not self._closing else "client is closed")
        action_id = f"dncgate-{next(self._ids)}"
        fields["ActionID"] = action_id
        future: asyncio.Future[Any] = manager.send_action(fields)
        self._pending[action_id] = future
        deadline = self.settings.action_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(deadline):
                result = await future
        except TimeoutError:
            raise AmiTimeout(f"{name}: no response within {deadline}s") from None
        finally:
            self._pending.pop(action_id, None)
            live.responses.pop(action_id, None)  # a late response must not find a cancelled future
        messages = [AmiMessage.from_panoramisk(m) for m in (result if isinstance(result, list) else [result])]
        response = AmiResponse(messages[0], tuple(messages[1:]))
        if response.response.response in ("Error", "Fail", "Failure"):
            raise AmiActionError(name, response.response.message)
        return response

    # ------------------------------------------------------------------ close
    async def close(self, timeout: float | None = None) -> None:
        """Stop reconnecting, close the connection and wait (bounded) for the transport to close."""
        self._closing = True
        bound = self.settings.close_timeout if timeout is None else timeout
        live = self._live
        self._mark_lost("closed")
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
        try:
            async with asyncio.timeout(bound):
                if supervisor is not None:
                    await asyncio.gather(supervisor, return_exceptions=True)
                if live is not None:
                    await live.closed_waiter
        except TimeoutError:
            self._log.warning("ami.close_timeout", timeout_s=bound)
            if live is not None and live.transport is not None:
                live.transport.abort()
        if self._manager is not None:
            self._manager.close()

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _encode(action: Mapping[str, ActionValue]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in action.items():
        values = [str(value)] if isinstance(value, str | int) else [str(v) for v in value]
        for text in (key, *values):
            if "\r" in text or "\n" in text:
                raise AmiEncodingError(f"AMI field {key[:40]!r} contains CR/LF")
        if ":" in key or not key:
            raise AmiEncodingError(f"bad AMI field name {key[:40]!r}")
        fields[key] = values[0] if isinstance(value, str | int) else values
    return fields
