"""The session server both call doors share: accept, allow or refuse a peer, run its session, close.

The FastAGI door (:class:`dncgate.agi.server.AgiServer`) and the FreeSWITCH outbound-socket door
(:class:`dncgate.esl.outbound.OutboundServer`) each supply only their session coroutine, and the
ESL door its refusal coroutine. Everything else is here, written once:

* a peer allowlist (``allow``, loopback only by default): a peer outside it is closed at once;
* a total and a per-peer cap on sessions running at once (one peer cannot hold every session);
* a refused connection is counted, and logged as ``door.server.session_refused`` at most once per
  peer and reason per ``refusal_log_interval`` (the next line says how many were not logged);
* ``close(timeout)``: stop accepting, let sessions finish for up to ``timeout`` seconds, cancel the
  rest and wait for them at most ``cancel_timeout`` seconds, then abort whatever is left.

Accepting is :class:`dncgate.acceptor.Acceptor`'s (an accept that fails for want of descriptors
is backed off and logged at most once a minute, not retried in a tight loop). Every log line
carries ``door`` (``agi`` or ``esl``); the event names are the same for both. The
server reads nothing from a socket itself: the doors' session coroutines put a deadline on every
read (AGI: header and reply deadlines; ESL: connect, command and event deadlines).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from types import TracebackType
from typing import Any, Self

import structlog

from dncgate.acceptor import Acceptor
from dncgate.config_file import LOOPBACK_PEERS, MAX_SESSIONS, MAX_SESSIONS_PER_PEER

__all__ = ["LOOPBACK", "Peer", "Refusal", "ServerLimits", "SessionRunner", "SessionServer", "is_loopback_host"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = LOOPBACK_PEERS
MAX_TRACKED_PEERS = 1024  # per-peer log state kept at most; beyond it, refusals share one "*" entry


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Who may connect to a door and how many sessions it runs; the same type for every door."""

    max_sessions: int = MAX_SESSIONS
    """Sessions running at once; a connection beyond it is refused."""
    max_sessions_per_peer: int = MAX_SESSIONS_PER_PEER
    """Sessions one peer address may hold at once, so that one peer cannot hold them all."""
    allow: tuple[str, ...] = LOOPBACK
    """Peer networks (CIDR, or a bare address) that may connect; anyone else is closed at once."""
    cancel_timeout: float = 2.0
    """On close, seconds to wait for the cancelled sessions to unwind before aborting their sockets."""
    refusal_log_interval: float = 60.0
    """Seconds between two ``door.server.session_refused`` lines for the same peer and reason."""
    backlog: int = 128
    networks: tuple[Network, ...] = field(init=False, repr=False, compare=False)
    _allowed: dict[str, bool] = field(init=False, repr=False, compare=False)  # allows()' answers, per address

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_sessions_per_peer", "backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServerLimits.{name} must be >= 1")
        for name in ("cancel_timeout", "refusal_log_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ServerLimits.{name} must be > 0")
        if isinstance(self.allow, str):
            raise ValueError("ServerLimits.allow must be a list of networks, not one string")
        networks: list[Network] = []
        for entry in self.allow:
            try:
                networks.append(ipaddress.ip_network(str(entry).strip()))
            except ValueError as exc:
                raise ValueError(f"ServerLimits.allow: {entry!r} is not a network or address ({exc})") from None
        object.__setattr__(self, "allow", tuple(str(n) for n in networks))
        object.__setattr__(self, "networks", tuple(networks))
        object.__setattr__(self, "_allowed", {})

    @property
    def loopback_only(self) -> bool:
        """Whether only loopback peers are allowed (a door listening beyond loopback then serves nobody)."""
        return all(net.is_loopback for net in self.networks)

    def allows(self, address: str) -> bool:
        """Whether a peer at ``address`` (as :attr:`Peer.address`) may connect."""
        known = self._allowed.get(address)
        if known is not None:  # a switch connects from the same few addresses on every call
            return known
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # not an IP peer (no address at all): nobody we know
        allowed = any(ip.version == net.version and ip in net for net in self.networks)
        if len(self._allowed) < MAX_TRACKED_PEERS:
            self._allowed[address] = allowed
        return allowed


@dataclass(frozen=True, slots=True)
class Peer:
    """The far end of one accepted connection."""

    address: str  # the IP address, IPv4-mapped IPv6 unwrapped ("" when unknown)
    remote: str  # "address:port" ("[v6]:port") for logs

    @classmethod
    def of(cls, writer: asyncio.StreamWriter) -> Peer:
        peer: Any = writer.get_extra_info("peername")
        if not (isinstance(peer, tuple) and len(peer) >= 2):
            return cls("", str(peer or ""))
        host, shown = _host_of(str(peer[0]))
        return cls(host, f"{shown}:{peer[1]}")


@lru_cache(maxsize=4096)
def _host_of(raw: str) -> tuple[str, str]:
    """A peer's address (IPv4-mapped IPv6 unwrapped) and that address as logs show it."""
    host = raw
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        host = str(mapped or ip)
    return host, f"[{host}]" if ":" in host else host


SessionRunner = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Peer], Awaitable[str]]
"""A door's session: serve one connection, close it, return the outcome (a short word) for the
server's ``outcomes`` counter; only CancelledError may escape."""
Refusal = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Peer, str], Awaitable[None]]
"""A door's answer to an allowed peer it has no room for (the reason is the last argument); it must
be bounded in time and close the connection."""


def is_loopback_host(host: str) -> bool:
    """Whether a listen address is loopback only (a wildcard or a host name is not)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"  # "", "0.0.0.0"-like names and other host names listen beyond it


@dataclass(slots=True)
class _Conn:
    peer: Peer
    writer: asyncio.StreamWriter
    session: bool  # a session (counted per peer) or a refusal


class SessionServer:
    """One listening door: ``start``, then ``close(timeout)``; or ``async with``.

    Counters: ``accepted`` (sessions started), ``refused`` and ``refused_by`` (reason ->
    count: ``not_allowed``, ``max_sessions``, ``max_sessions_per_peer``, ``closing``), ``outcomes``
    (what each session's coroutine returned; ``cancelled`` and ``handler_error`` are counted here).

    A refused connection is aborted at once, unless the door gave a ``refuse`` coroutine and the
    peer is allowed: then that coroutine answers it (the ESL door sends ``connect`` first, since a
    FreeSWITCH whose socket closes before ``connect`` parks the call). At most ``max_sessions``
    refusals run at once; beyond that a refused connection is aborted.
    """

    def __init__(
        self,
        door: str,
        run: SessionRunner,
        *,
        host: str,
        port: int,
        limits: ServerLimits | None = None,
        refuse: Refusal | None = None,
        stream_limit: int = 2**16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.door = door
        self.host = host
        self.server_limits = limits if limits is not None else ServerLimits()
        self._run = run
        self._refusal = refuse
        self._port = port
        self._stream_limit = stream_limit
        self._clock = clock
        self._server: Acceptor | None = None
        self._tasks: dict[asyncio.Task[Any], _Conn] = {}
        self._per_peer: Counter[str] = Counter()
        self._refusing = 0
        self._logged_at: dict[tuple[str, str], float] = {}
        self._suppressed: Counter[tuple[str, str]] = Counter()
        self._closing = False
        self._drained = False  # the acceptor has handed over all it accepted: anything later is refused
        self._closed = asyncio.Event()
        self._log = structlog.get_logger().bind(door=door)
        self.accepted = 0
        self.refused = 0
        self.refused_by: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()

    @property
    def port(self) -> int:
        """The bound port once started (useful with ``port=0``), else the configured one."""
        return self._server.port if self._server is not None else self._port

    @property
    def active_sessions(self) -> int:
        return len(self._tasks) - self._refusing

    @property
    def serving(self) -> bool:
        return self._server is not None and not self._closing

    def sessions_of(self, address: str) -> int:
        """Sessions the peer at ``address`` holds now."""
        return self._per_peer[address]

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError(f"{self.door} server already started")
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:  # what asyncio.start_server would build
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(self._stream_limit, loop), self._on_connect)

        self._server = Acceptor(self.door, protocol, self.host, self._port, backlog=self.server_limits.backlog)
        await self._server.start()
        limits = self.server_limits
        self._log.info("door.server.started", host=self.host, port=self.port, max_sessions=limits.max_sessions,
                       max_sessions_per_peer=limits.max_sessions_per_peer, allow=list(limits.allow))
        if not is_loopback_host(self.host) and limits.loopback_only:
            self._log.warning("door.server.loopback_only", host=self.host, allow=list(limits.allow),
                              detail="listening beyond loopback, but only loopback peers are allowed")

    async def serve_forever(self) -> None:
        """Wait until :meth:`close` has finished (starting the server first if needed)."""
        if self._server is None:
            await self.start()
        await self._closed.wait()

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer.of(writer)
        reason = self._refusal_reason(peer)
        if reason is None:
            self.accepted += 1
            self._per_peer[peer.address] += 1
            self._track(self._run(reader, writer, peer), _Conn(peer, writer, session=True))
            return
        self.refused += 1
        self.refused_by[reason] += 1
        self._log_refusal(peer, reason)
        if (reason == "not_allowed" or self._refusal is None or self._closed.is_set()
                or self._refusing >= self.server_limits.max_sessions):
            writer.transport.abort()
            return
        self._refusing += 1
        self._track(self._refusal(reader, writer, peer, reason), _Conn(peer, writer, session=False))

    def _refusal_reason(self, peer: Peer) -> str | None:
        limits = self.server_limits
        if not limits.allows(peer.address):
            return "not_allowed"
        if self._drained:
            return "closing"
        if self.active_sessions >= limits.max_sessions:
            return "max_sessions"
        if self._per_peer[peer.address] >= limits.max_sessions_per_peer:
            return "max_sessions_per_peer"
        return None

    def _log_refusal(self, peer: Peer, reason: str) -> None:
        limits = self.server_limits
        now = self._clock()
        key = (peer.address, reason)
        if key not in self._logged_at and len(self._logged_at) >= MAX_TRACKED_PEERS:
            for old in [k for k, at in self._logged_at.items() if now - at >= limits.refusal_log_interval]:
                del self._logged_at[old]
                self._suppressed.pop(old, None)
            if len(self._logged_at) >= MAX_TRACKED_PEERS:
                key = ("*", reason)  # too many peers to tell apart: they share one line per interval
        last = self._logged_at.get(key)
        if last is not None and now - last < limits.refusal_log_interval:
            self._suppressed[key] += 1
            return
        self._logged_at[key] = now
        self._log.warning(
            "door.server.session_refused", reason=reason, remote=peer.remote, active=self.active_sessions,
            max_sessions=limits.max_sessions, peer_sessions=self._per_peer[peer.address],
            max_sessions_per_peer=limits.max_sessions_per_peer, suppressed=self._suppressed.pop(key, 0),
        )

    def _track(self, work: Awaitable[Any], conn: _Conn) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(f"{self.door}-{'session' if conn.session else 'refusal'}-{conn.peer.remote}")
        self._tasks[task] = conn
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        conn = self._tasks.pop(task)
        if conn.session:
            self._per_peer[conn.peer.address] -= 1
            if self._per_peer[conn.peer.address] <= 0:
                del self._per_peer[conn.peer.address]
        else:
            self._refusing -= 1
        if task.cancelled():
            if conn.session:
                self.outcomes["cancelled"] += 1
            conn.writer.transport.abort()
            return
        exc = task.exception()
        if exc is not None:  # the door's coroutine lets only CancelledError out; keep the loop clean
            self._log.error("door.server.session_crashed", remote=conn.peer.remote, error=repr(exc), exc_info=exc)
            conn.writer.transport.abort()
            if conn.session:
                self.outcomes["handler_error"] += 1
            return
        if conn.session:
            self.outcomes[str(task.result())] += 1

    async def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, let sessions finish for up to ``timeout`` s, cancel the rest (bounded)."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._log.info("door.server.closing", active=self.active_sessions, timeout=timeout)
        if self._server is not None:  # what it accepted before the close is served, not refused
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.server_limits.cancel_timeout):
                    await self._server.wait_closed()
        self._drained = True
        running = set(self._tasks)
        if running:
            _, pending = await asyncio.wait(running, timeout=timeout)
            await self._cancel(pending)
        await self._cancel(set(self._tasks) - running)  # accepted while we were closing, still running
        self._log.info("door.server.closed", accepted=self.accepted, refused=self.refused)
        self._closed.set()

    async def _cancel(self, pending: set[asyncio.Task[Any]]) -> None:
        if not pending:
            return
        self._log.warning("door.server.sessions_cancelled", count=len(pending))
        for task in pending:
            task.cancel()
        _, stuck = await asyncio.wait(pending, timeout=self.server_limits.cancel_timeout)
        if stuck:  # a coroutine that ignores cancellation: its socket goes now, the task is left
            self._log.error("door.server.sessions_abandoned", count=len(stuck))
            for task in stuck:
                conn = self._tasks.get(task)
                if conn is not None:
                    conn.writer.transport.abort()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.close()
