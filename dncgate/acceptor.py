"""Listening sockets with the gate's own accept loop, for the call doors and the HTTP side alike.

asyncio's selector loop (3.11, ``_accept_connection``) answers a failed ``accept()`` (``EMFILE``:
the process is out of descriptors) by logging "socket.accept() out of system resource" and
scheduling a retry, and does not stop at the first failure: up to ``backlog`` times in one
wake-up, each retry doing the same. A flood of idle connections that uses every descriptor turns
into a storm of log lines and a loop too busy to answer the other doors (issue 11 item 9). Here
each listening socket has one accept task:

* out of a resource (``EMFILE``, ``ENFILE``, ``ENOBUFS``, ``ENOMEM``), it pauses (the one
  backoff, from 50 ms to 2 s) and tries again; ``acceptor.accept_failed`` is logged at most once
  per ``log_interval`` with how many failures it stands for;
* with ``max_connections``, it stops accepting while that many of its connections are open (the
  owner calls :meth:`Acceptor.release` when one ends): the rest wait in the kernel's backlog and
  cost the process no descriptor.

With ``tls``, each connection's handshake runs in a task of its own, bounded by
``tls_handshake_timeout``: a peer that stalls its handshake does not stall accepting.

``Acceptor`` is an ``asyncio.AbstractServer`` (``close``, ``wait_closed``, ``sockets``), so an
aiohttp site can hold it.

Under ``serve --workers N`` (``dncgate.supervisor``) the supervisor binds each door's sockets once
(:func:`bind_listeners`) and its workers inherit them: ``DNCGATE_LISTEN_FDS`` names the descriptors
per door (``agi=3,4;http=5``), and an acceptor of that name accepts on them instead of binding.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import structlog

from dncgate.backoff import Backoff

__all__ = ["LISTEN_FDS_ENV", "RESOURCE_ERRNOS", "Acceptor", "ProtocolFactory", "bind_listeners",
           "inherited_listeners", "listen_fds_value"]

ProtocolFactory = Callable[[], asyncio.BaseProtocol]
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# A connection that went away between the kernel's accept queue and accept(): try the next.
_GONE_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.ECONNRESET, errno.EPERM})
ACCEPT_BACKOFF = Backoff(initial=0.05, maximum=2.0)
LISTEN_FDS_ENV = "DNCGATE_LISTEN_FDS"  # a worker's inherited listening descriptors, per door


class Acceptor(asyncio.AbstractServer):
    """``start()`` binds ``host:port`` (every address it resolves to) and accepts into ``factory``."""

    def __init__(
        self, name: str, factory: ProtocolFactory, host: str | None, port: int, *, backlog: int = 128,
        max_connections: int | None = None, log_interval: float = 60.0, backoff: Backoff = ACCEPT_BACKOFF,
        clock: Callable[[], float] = time.monotonic, tls: ssl.SSLContext | None = None,
        tls_handshake_timeout: float = 10.0,
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError("Acceptor.max_connections must be >= 1")
        self.name = name
        self._factory = factory
        self._host = host
        self._port = port
        self._backlog = backlog
        self.max_connections = max_connections
        self._log_interval = log_interval
        self._backoff = backoff
        self._clock = clock
        self._tls = tls
        self._tls_handshake_timeout = tls_handshake_timeout
        self._handshakes: set[asyncio.Task[None]] = set()
        self._sockets: list[socket.socket] = []
        self._bound_port: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._readable: set[asyncio.Future[None]] = set()  # what the accept loops wait on
        self._closed = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._serving = False
        self._logged_at: float | None = None
        self._unlogged = 0
        self._log = structlog.get_logger("dncgate.acceptor").bind(acceptor=name)
        self.open = 0  # connections counted against max_connections (accepted, not yet released)
        self.accepted = 0
        self.accept_failures = 0

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    @property
    def port(self) -> int:
        """The bound port once started (useful with ``port=0``; kept after close), else the configured one."""
        return self._bound_port if self._bound_port is not None else self._port

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def is_serving(self) -> bool:
        return self._serving

    async def start(self) -> None:
        if self._sockets:
            raise RuntimeError(f"acceptor {self.name} already started")
        if self._bound_port is not None:
            raise RuntimeError(f"acceptor {self.name} was closed")
        self._sockets = inherited_listeners(self.name) or bind_listeners(self._host, self._port, self._backlog)
        self._bound_port = int(self._sockets[0].getsockname()[1])
        self._serving = True
        for sock in self._sockets:
            self._tasks.append(asyncio.create_task(self._accept_loop(sock), name=f"{self.name}-accept"))

    async def start_serving(self) -> None:
        if not self._sockets:
            await self.start()

    async def serve_forever(self) -> None:
        await self.start_serving()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def release(self) -> None:
        """A connection counted against ``max_connections`` has ended."""
        self.open = max(0, self.open - 1)
        if self.max_connections is None or self.open < self.max_connections:
            self._room.set()

    def close(self) -> None:
        """Stop accepting and close the listening sockets (open connections are the owner's).

        Nothing accepted is lost: an accept loop is waiting for its socket to be readable (no
        longer watched from here on: it ends), or is handing a connection it accepted to the
        factory (it finishes that, then ends; :meth:`wait_closed` waits for it). Under
        ``--workers`` the connections still in the kernel's queue are the other workers'."""
        self._serving = False
        self._closed.set()
        self._room.set()  # a loop paused at max_connections wakes and ends
        with contextlib.suppress(RuntimeError):  # no loop running: nothing watches the sockets
            loop = asyncio.get_running_loop()
            for sock in self._sockets:
                loop.remove_reader(sock.fileno())
        for readable in self._readable:
            if not readable.done():
                readable.set_result(None)
        for task in self._handshakes:
            task.cancel()
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    async def wait_closed(self) -> None:
        tasks, self._tasks = [*self._tasks, *self._handshakes], []
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while self._serving:
            await self._room.wait()
            if not self._serving:
                return
            try:
                conn = await self._accept_one(loop, sock)
            except OSError as exc:
                if exc.errno in _GONE_ERRNOS:
                    continue
                failures += 1
                self._accept_failed(exc)
                await self._pause(self._backoff.delay(failures - 1))
                continue
            if conn is None:  # woken with nothing to accept (another worker took it), or closed
                continue
            failures = 0
            if self._tls is None:
                await self._connect(loop, conn)
                continue
            # A TLS handshake takes round trips (and a peer may stall it): not on the accept loop.
            task = asyncio.create_task(self._connect(loop, conn), name=f"{self.name}-handshake")
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _accept_one(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> socket.socket | None:
        """A connection from the queue, or None once the socket was readable (or closed) with none."""
        try:
            conn, _ = sock.accept()
            return conn
        except (BlockingIOError, InterruptedError):
            pass
        readable: asyncio.Future[None] = loop.create_future()
        self._readable.add(readable)
        loop.add_reader(sock.fileno(), _wake, readable)
        try:
            await readable
        finally:
            self._readable.discard(readable)
            if self._serving:
                loop.remove_reader(sock.fileno())
        return None

    async def _pause(self, seconds: float) -> None:
        """The backoff after a failed accept; ends early when the acceptor closes."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closed.wait()

    async def _connect(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        self.accepted += 1
        if self.max_connections is not None:
            self.open += 1
            if self.open >= self.max_connections:
                self._room.clear()
        try:
            conn.setblocking(False)
            if self._tls is None:
                await loop.connect_accepted_socket(self._factory, conn)
            else:
                await loop.connect_accepted_socket(self._factory, conn, ssl=self._tls,
                                                   ssl_handshake_timeout=self._tls_handshake_timeout)
        except Exception as exc:  # noqa: BLE001 - that connection goes; the accept loop (the door) stays
            if isinstance(exc, OSError):  # the peer is gone already, or no buffer for its transport
                self._log.debug("acceptor.connection_failed", error=repr(exc))
            else:  # a protocol that failed to start: a bug, said once per connection
                self._log.error("acceptor.connection_failed", error=repr(exc))
            conn.close()
            if self.max_connections is not None:
                self.release()

    def _accept_failed(self, exc: OSError) -> None:
        self.accept_failures += 1
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < self._log_interval:
            self._unlogged += 1
            return
        self._logged_at = now
        self._log.warning("acceptor.accept_failed", error=errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                          detail=exc.strerror, also_failed=self._unlogged, open=self.open,
                          max_connections=self.max_connections, pause="backoff 0.05 s doubling to 2 s")
        self._unlogged = 0


def _wake(readable: asyncio.Future[None]) -> None:
    if not readable.done():
        readable.set_result(None)


def listen_fds_value(doors: dict[str, list[int]]) -> str:
    """``DNCGATE_LISTEN_FDS``'s value for ``doors`` (door name -> inherited descriptors)."""
    return ";".join(f"{door}={','.join(str(fd) for fd in fds)}" for door, fds in doors.items())


def inherited_listeners(door: str) -> list[socket.socket]:
    """The listening sockets this process inherited for ``door`` (none: not a worker, or not that door).

    Each descriptor is adopted once: a second acceptor of the same name binds its own."""
    value = os.environ.get(LISTEN_FDS_ENV, "")
    doors = dict(part.split("=", 1) for part in value.split(";") if "=" in part)
    fds = [int(fd) for fd in doors.pop(door, "").split(",") if fd.strip().isdigit()]
    if not fds:
        return []
    os.environ[LISTEN_FDS_ENV] = ";".join(f"{name}={text}" for name, text in doors.items())
    sockets = [socket.socket(fileno=fd) for fd in fds]
    for sock in sockets:
        sock.setblocking(False)
    return sockets


def bind_listeners(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to (all interfaces for "" or None)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[Any] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one port for every address, as the first got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        raise
    return sockets
