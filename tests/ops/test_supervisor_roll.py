"""The supervisor's rolling restart (SIGUSR2) when workers die in it: N workers serve afterwards, never N + 1.

The supervisor runs in the test's loop; its workers are real processes of a stand-in script
(``STAND_IN``) steered through files in a control directory: each writes ``started-<pid>`` (its
slot), reports ready once ``ready-<pid>`` exists, exits 3 once ``die-<pid>`` exists, and exits 0
on SIGTERM. Every wait is a bounded poll (``tests.polls``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog.testing

from dncgate.backoff import Backoff
from dncgate.settings.load import load
from dncgate.supervisor import Supervisor
from tests.conftest import free_port
from tests.polls import poll_until

STAND_IN = """\
import os, signal, sys, time
from pathlib import Path

control, pid = Path(sys.argv[1]), os.getpid()
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
(control / f"started-{pid}.tmp").write_text(os.environ["DNCGATE_WORKER_SLOT"])
(control / f"started-{pid}.tmp").rename(control / f"started-{pid}")
ready_fd = int(os.environ["DNCGATE_READY_FD"])
for _ in range(30_000):  # the bound: about 5 minutes, then it gives up by itself
    if ready_fd >= 0 and (control / f"ready-{pid}").exists():
        os.write(ready_fd, b"R")
        os.close(ready_fd)
        ready_fd = -1
    if (control / f"die-{pid}").exists():
        os._exit(3)
    time.sleep(0.01)
os._exit(9)
"""
POLLS = 3000  # 10 ms apart: about 30 s on an idle machine


@dataclass
class Lab:
    supervisor: Supervisor
    control: Path
    logs: list[dict[str, Any]]

    def started(self) -> dict[int, int]:
        """Every worker started so far: pid -> slot."""
        return {int(p.name.removeprefix("started-")): int(p.read_text())
                for p in self.control.glob("started-*") if not p.name.endswith(".tmp")}

    def live(self) -> set[int]:
        return {w.process.pid for w in self.supervisor.live}

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.logs if e["event"] == name]

    def signal_file(self, what: str, pid: int) -> None:
        (self.control / f"{what}-{pid}").touch()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        await poll_until(condition, what, POLLS)

    async def ready(self, pid: int) -> None:
        self.signal_file("ready", pid)
        await self.until(lambda: any(e["pid"] == pid for e in self.events("supervisor.worker_ready")),
                         f"worker {pid} ready")

    async def started_count(self, count: int) -> set[int]:
        await self.until(lambda: len(self.started()) >= count, f"{count} workers started")
        return set(self.started())


@contextlib.asynccontextmanager
async def supervisor_lab(tmp_path: Path) -> AsyncIterator[Lab]:
    """A supervisor of two stand-in workers (both ready) on a loopback FastAGI port."""
    control = tmp_path / "control"
    control.mkdir()
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    config = tmp_path / "dncgate.toml"
    config.write_text(f'[serve]\nworkers = 2\n[agi]\nhost = "127.0.0.1"\nport = {free_port()}\n'
                      '[http]\nenabled = false\n[store]\npath = "gate.sqlite3"\n')
    supervisor = Supervisor(load(config, {}), [sys.executable, str(script), str(control)],
                            backoff=Backoff(initial=0.01, jitter=0.0))
    with structlog.testing.capture_logs() as logs:
        lab = Lab(supervisor, control, logs)
        running = asyncio.create_task(supervisor.run())
        try:
            for pid in await lab.started_count(2):
                await lab.ready(pid)
            yield lab
        finally:
            supervisor.stop()
            await asyncio.wait_for(running, 120)


def by_slot(lab: Lab, pids: set[int]) -> list[int]:
    return sorted(pids, key=lambda pid: lab.started()[pid])


async def test_an_old_worker_dying_while_its_replacement_starts_is_not_respawned(tmp_path: Path) -> None:
    async with supervisor_lab(tmp_path) as lab:
        first, second = by_slot(lab, set(lab.started()))
        lab.supervisor.rolling_restart()
        (fresh,) = await lab.started_count(3) - {first, second}  # the replacement of slot 0's worker
        lab.signal_file("die", first)
        await lab.until(lambda: bool(lab.events("supervisor.respawn_not_needed")) or len(lab.started()) > 3,
                        "the death answered")
        assert len(lab.started()) == 3, "the dead old worker was respawned besides its replacement"
        assert [e["pid"] for e in lab.events("supervisor.worker_died")] == [first]
        await lab.ready(fresh)
        (fresh_2,) = await lab.started_count(4) - {first, second, fresh}
        await lab.ready(fresh_2)
        await lab.until(lambda: bool(lab.events("supervisor.restart_finished")), "the restart finished")
        assert lab.live() == {fresh, fresh_2}
        assert len(lab.started()) == 4


async def test_another_worker_dying_in_the_restart_is_respawned(tmp_path: Path) -> None:
    async with supervisor_lab(tmp_path) as lab:
        first, second = by_slot(lab, set(lab.started()))
        lab.supervisor.rolling_restart()
        (fresh,) = await lab.started_count(3) - {first, second}
        lab.signal_file("die", second)  # not the one being replaced: it must be replaced at once
        (respawned,) = await lab.started_count(4) - {first, second, fresh}
        assert not lab.events("supervisor.respawn_not_needed")
        await lab.ready(respawned)
        await lab.ready(fresh)
        await lab.until(lambda: bool(lab.events("supervisor.restart_finished")), "the restart finished")
        assert lab.live() == {fresh, respawned}
        assert len(lab.started()) == 4


async def test_a_failed_replacement_of_a_dead_old_worker_is_made_up_for(tmp_path: Path) -> None:
    async with supervisor_lab(tmp_path) as lab:
        first, second = by_slot(lab, set(lab.started()))
        lab.supervisor.rolling_restart()
        (fresh,) = await lab.started_count(3) - {first, second}
        lab.signal_file("die", first)
        await lab.until(lambda: bool(lab.events("supervisor.respawn_not_needed")), "the death answered")
        lab.signal_file("die", fresh)  # the replacement dies before it is ready: the restart fails
        (made_up,) = await lab.started_count(4) - {first, second, fresh}
        await lab.ready(made_up)
        await lab.until(lambda: lab.live() == {second, made_up}, "slot 0 served again")
        assert lab.events("supervisor.restart_failed")
        assert len(lab.started()) == 4
