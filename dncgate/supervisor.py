"""``serve --workers N``: one supervisor, N worker processes accepting on the sockets it bound once.

The supervisor binds each call door's and the HTTP side's listening sockets itself
(:func:`dncgate.acceptor.bind_listeners`), then runs ``dncgate serve`` again N times with the
sockets passed down (``pass_fds``, named in ``DNCGATE_LISTEN_FDS``). Every worker accepts on the
same sockets, so each door has one accept queue: a worker that stops accepting leaves the
connections still queued to the others (with ``SO_REUSEPORT`` each worker has a queue of its own,
and the connections queued to a worker that closes its socket are reset).

* a worker that dies is started again in a free slot after a backoff (``RESPAWN_BACKOFF``) when
  fewer than N workers then serve or are being started (``_top_up``): an old worker that dies in a
  rolling restart while its replacement starts is not (the replacement takes its place); after
  ``MAX_RESPAWNS`` deaths with no worker becoming ready in between, the supervisor stops all;
* SIGTERM/SIGINT: each worker gets SIGTERM (it stops accepting, finishes its sessions within
  serve's bounded shutdown, exits); one still running after ``WORKER_STOP_TIMEOUT`` is killed;
  the exit status is 0 when every worker ended by itself with 0;
* SIGHUP is forwarded (each worker re-reads the configuration);
* SIGUSR2: a rolling restart: for each worker, a new one is started and must report ready
  (``dncgate.worker``) within ``[serve] ready_timeout_s``, then the old one gets SIGTERM and is
  waited for; one at a time. A new worker that does not get ready is killed and the rest kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from dncgate.acceptor import LISTEN_FDS_ENV, bind_listeners, listen_fds_value
from dncgate.app import AUDIT_GRACE
from dncgate.backoff import Backoff
from dncgate.errors import ConfigError
from dncgate.settings import Settings
from dncgate.worker import READY_FD_ENV, SLOT_ENV

__all__ = ["Supervisor", "bind_doors", "not_with_workers"]

log = structlog.get_logger("dncgate.supervisor")
RESPAWN_BACKOFF = Backoff(initial=0.5, maximum=30.0)
MAX_RESPAWNS = 10
# A worker's own shutdown: the doors (5 s), cancelled sessions (2 s), the audit (AUDIT_GRACE), and a margin.
WORKER_STOP_TIMEOUT = 5.0 + 2.0 + AUDIT_GRACE + 6.0
BACKLOG = 128


def bind_doors(config: Settings) -> dict[str, list[socket.socket]]:
    """The listening sockets of every enabled door a worker serves, by the door's acceptor name."""
    listeners = {"agi": config.agi, "esl": config.esl, "http": config.http}
    bound: dict[str, list[socket.socket]] = {}
    try:
        for door, listener in listeners.items():
            if listener.enabled:
                bound[door] = bind_listeners(listener.host, listener.port, BACKLOG)
    except OSError:
        for sockets in bound.values():
            for sock in sockets:
                sock.close()
        raise
    return bound


def not_with_workers(config: Settings) -> list[str]:
    """What runs once per host and is not moved to the supervisor: refused with ``workers`` >= 2."""
    once = {
        "sync.enabled": config.sync.enabled, "sync.outbox": config.sync.outbox is not None,
        "feed.enabled": config.feed.enabled, "ami.enabled": config.ami.enabled,
        "esl_feed.enabled": config.esl_feed.enabled, "early_warning.enabled": config.early_warning.enabled,
        "enforcement.enabled": config.enforcement.enabled,
        "messages.smpp.enabled": config.messages.enabled and config.messages.smpp.enabled,
        "messages.freeswitch.enabled": config.messages.enabled and config.messages.freeswitch.enabled,
    }
    return [f"serve.workers = {config.serve.workers}: {key} runs once per host, not yet with workers "
            "(set it off, or run one process)" for key, on in once.items() if on]


@dataclass(eq=False)
class Worker:
    slot: int
    process: asyncio.subprocess.Process
    ready: asyncio.Future[bool]  # True once it reported ready; False: its pipe closed first (it died)
    retiring: bool = False  # sent SIGTERM by the supervisor: its exit is no death
    replacement: Worker | None = None  # the worker a rolling restart started to take this one's place


class Supervisor:
    """Runs ``argv`` (a ``dncgate ... serve`` command line) as ``config.serve.workers`` workers."""

    def __init__(self, config: Settings, argv: Sequence[str] | None = None, *,
                 backoff: Backoff = RESPAWN_BACKOFF, max_respawns: int = MAX_RESPAWNS) -> None:
        problems = not_with_workers(config)
        if problems:
            raise ConfigError(problems)
        self.config = config
        self.count = config.serve.workers
        self.argv = list(argv) if argv is not None else [sys.executable, "-m", "dncgate.cli", *sys.argv[1:]]
        self.backoff = backoff
        self.max_respawns = max_respawns
        self.live: set[Worker] = set()
        self._starting: dict[int, Worker | None] = {}  # slot -> the worker it replaces: being started
        self._listeners: dict[str, list[socket.socket]] = {}
        self._stop = asyncio.Event()
        self._stopping = False
        self._deaths = 0  # workers dead since a worker last became ready
        self._failed = False
        self._rolling: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # every worker's ready reader and watcher

    async def run(self) -> int:
        """Until SIGTERM/SIGINT (or too many deaths); 0 when every worker stopped cleanly."""
        self._listeners = bind_doors(self.config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._forward, signal.SIGHUP)
        loop.add_signal_handler(signal.SIGUSR2, self.rolling_restart)
        try:
            for _ in range(self.count):
                await self._spawn()
            ports = {door: sockets[0].getsockname()[1] for door, sockets in self._listeners.items()}
            log.info("supervisor.started", pid=os.getpid(), workers=self.count, ports=ports,
                     worker_pids=sorted(w.process.pid for w in self.live))
            await self._stop.wait()
        finally:
            clean = await self._stop_all()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2):
                loop.remove_signal_handler(sig)
            for sockets in self._listeners.values():
                for sock in sockets:
                    sock.close()
        log.info("supervisor.stopped", clean=clean, gave_up=self._failed)
        return 0 if clean and not self._failed else 1

    def stop(self) -> None:
        """What SIGTERM/SIGINT do: stop every worker and return from :meth:`run`."""
        self._stop.set()

    def rolling_restart(self) -> None:
        """Replace every worker, one at a time (SIGUSR2); a request while one runs is ignored, logged."""
        if self._stopping:
            return
        if self._rolling is not None and not self._rolling.done():
            log.warning("supervisor.restart_running", detail="SIGUSR2 ignored: a rolling restart is under way")
            return
        self._rolling = asyncio.create_task(self._roll(), name="supervisor-roll")

    async def _roll(self) -> None:
        old = sorted((w for w in self.live if not w.retiring), key=lambda w: w.slot)
        log.info("supervisor.restart_started", workers=len(old))
        for previous in old:
            if self._stopping:
                return
            if previous.process.returncode is not None:
                continue  # died meanwhile: respawned as any dead worker is
            fresh = await self._spawn(replaces=previous)
            if not await self._wait_ready(fresh):
                log.error("supervisor.restart_failed", slot=fresh.slot, pid=fresh.process.pid,
                          ready_timeout_s=self.config.serve.ready_timeout, detail="the old workers are kept")
                await self._retire(fresh, signal.SIGKILL)
                previous.replacement = None
                await self._top_up()  # the old one may have died meanwhile, its respawn left to ``fresh``
                return
            await self._retire(previous, signal.SIGTERM)
        log.info("supervisor.restart_finished", workers=len(old), worker_pids=sorted(w.process.pid for w in self.live))

    async def _wait_ready(self, worker: Worker) -> bool:
        try:
            async with asyncio.timeout(self.config.serve.ready_timeout):
                return await asyncio.shield(worker.ready)
        except TimeoutError:
            return False

    async def _retire(self, worker: Worker, how: signal.Signals) -> bool:
        """``how`` to ``worker``, then its exit (killed after ``WORKER_STOP_TIMEOUT``); whether it ended cleanly."""
        worker.retiring = True
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(how)
        try:
            async with asyncio.timeout(WORKER_STOP_TIMEOUT):
                code = await worker.process.wait()
        except TimeoutError:
            log.error("supervisor.worker_killed", slot=worker.slot, pid=worker.process.pid,
                      timeout_s=WORKER_STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await worker.process.wait()
            return False
        return code == 0 or how == signal.SIGKILL

    async def _stop_all(self) -> bool:
        self._stopping = True
        if self._rolling is not None:
            self._rolling.cancel()
            await asyncio.gather(self._rolling, return_exceptions=True)
        workers = list(self.live)
        log.info("supervisor.stopping", worker_pids=sorted(w.process.pid for w in workers))
        results = await asyncio.gather(*(self._retire(w, signal.SIGTERM) for w in workers))
        await asyncio.gather(*self._tasks, return_exceptions=True)  # each bounded by its worker's life
        return all(results)

    def _forward(self, sig: signal.Signals) -> None:
        pids = [w.process.pid for w in self.live if not w.retiring]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        log.info("supervisor.signal_forwarded", signal=sig.name, worker_pids=sorted(pids))

    def _serving(self) -> int:
        """Workers that serve or are about to: the ones being started, and the live ones neither
        retiring nor standing down for a replacement (being started, or live: it counts instead)."""
        replaced = {w for w in self._starting.values() if w is not None}
        replaced |= {w for w in self.live if w.replacement is not None and w.replacement in self.live
                     and not w.replacement.retiring}
        return len(self._starting) + sum(1 for w in self.live if not w.retiring and w not in replaced)

    async def _top_up(self) -> None:
        """Start a worker when fewer than N serve (a death's respawn)."""
        if self._stopping or self._stop.is_set():
            return
        serving = self._serving()
        if serving >= self.count:
            log.info("supervisor.respawn_not_needed", serving=serving, workers=self.count,
                     worker_pids=sorted(w.process.pid for w in self.live))
            return
        fresh = await self._spawn()
        if self._stopping:  # the stop began while it was being started: it did not see this one
            await self._retire(fresh, signal.SIGTERM)

    def _free_slot(self) -> int:
        taken = {w.slot for w in self.live} | set(self._starting)
        return next(slot for slot in range(len(taken) + 1) if slot not in taken)

    async def _spawn(self, replaces: Worker | None = None) -> Worker:
        """A worker in the lowest free slot, inheriting the listening sockets and a ready pipe
        (``replaces``: the worker it takes the place of, in a rolling restart)."""
        slot = self._free_slot()
        fds = {door: [sock.fileno() for sock in sockets] for door, sockets in self._listeners.items()}
        read_fd, write_fd = os.pipe()
        env = {**os.environ, LISTEN_FDS_ENV: listen_fds_value(fds), SLOT_ENV: str(slot), READY_FD_ENV: str(write_fd)}
        self._starting[slot] = replaces
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv, env=env, stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(*(fd for door in fds.values() for fd in door), write_fd))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
            del self._starting[slot]
        worker = Worker(slot, process, asyncio.get_running_loop().create_future())
        self.live.add(worker)
        if replaces is not None:
            replaces.replacement = worker
        for task in (asyncio.create_task(self._read_ready(worker, read_fd), name=f"worker-{slot}-ready"),
                     asyncio.create_task(self._watch(worker), name=f"worker-{slot}-watch")):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        log.info("supervisor.worker_started", slot=slot, pid=process.pid)
        return worker

    async def _read_ready(self, worker: Worker, read_fd: int) -> None:
        """The worker's ready byte (or the pipe's end, when it dies first); bounded by its life."""
        reader = asyncio.StreamReader(limit=16)
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            ready = bool(await reader.read(1))
        finally:
            transport.close()
        if ready:
            self._deaths = 0
            log.info("supervisor.worker_ready", slot=worker.slot, pid=worker.process.pid)
        if not worker.ready.done():
            worker.ready.set_result(ready)

    async def _watch(self, worker: Worker) -> None:
        """Wait for the worker's exit; a death (not retired, not stopping) is answered by a new worker."""
        code = await worker.process.wait()
        self.live.discard(worker)
        if worker.retiring or self._stopping:
            log.info("supervisor.worker_exited", slot=worker.slot, pid=worker.process.pid, code=code)
            return
        attempt, self._deaths = self._deaths, self._deaths + 1
        log.error("supervisor.worker_died", slot=worker.slot, pid=worker.process.pid, code=code,
                  deaths=self._deaths, max_respawns=self.max_respawns)
        if self._deaths > self.max_respawns:
            log.error("supervisor.giving_up", deaths=self._deaths, detail="no worker got ready between them")
            self._failed = True
            self._stop.set()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.backoff.delay(attempt)):
                await self._stop.wait()
        await self._top_up()
