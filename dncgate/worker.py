"""What a ``serve --workers N`` worker process learns from its supervisor (``dncgate.supervisor``).

The supervisor starts each worker with, besides ``DNCGATE_LISTEN_FDS`` (``dncgate.acceptor``):

* ``DNCGATE_WORKER_SLOT``: the worker's slot, 0 to N (N + 1 slots: a rolling restart runs one
  extra worker for a while). A slot is handed to one live worker at a time: the worker's audit
  spool is ``<spool_dir>/worker-<slot>``, so a worker started in a dead one's slot replays what
  that one left (the spool's flock allows one gate per spool). The spools of slots a configuration
  no longer has (``workers`` shrank, or the extra slot of a rolling restart) and a one-process
  ``serve``'s spool are orphans (``orphan_spools``): a starting worker adopts their segments
  (``dncgate.audit_spool.adopt_segments``), so their records are replayed too;
* ``DNCGATE_READY_FD``: the write end of a pipe; the worker writes one byte to it once every door
  accepts (``report_ready``), which is what a rolling restart waits for.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["READY_FD_ENV", "SLOT_ENV", "SPOOL_PREFIX", "WorkerRole", "orphan_spools", "worker_role"]

SLOT_ENV = "DNCGATE_WORKER_SLOT"
READY_FD_ENV = "DNCGATE_READY_FD"
READY_BYTE = b"R"
SPOOL_PREFIX = "worker-"  # a worker's audit spool: <spool_dir>/worker-<slot>


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process is worker ``slot`` of a supervisor."""

    slot: int
    ready_fd: int | None

    def spool_dir(self, spool: Path) -> Path:
        """This worker's own audit spool inside the configured one."""
        return spool / f"{SPOOL_PREFIX}{self.slot}"

    def report_ready(self) -> None:
        """Tell the supervisor every door accepts (once; a supervisor gone already is no error)."""
        if self.ready_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.ready_fd, READY_BYTE)
        with contextlib.suppress(OSError):
            os.close(self.ready_fd)
        object.__setattr__(self, "ready_fd", None)


def worker_role() -> WorkerRole | None:
    """This process's role when a supervisor started it, else None (a single ``serve`` process)."""
    slot = os.environ.get(SLOT_ENV, "")
    if not slot.isdigit():
        return None
    ready = os.environ.get(READY_FD_ENV, "")
    return WorkerRole(int(slot), int(ready) if ready.isdigit() else None)


def orphan_spools(root: Path, role: WorkerRole | None, workers: int) -> list[Path]:
    """The audit spools under ``root`` (the configured ``spool_dir``) that no process of this
    configuration owns, to adopt before this one opens its own.

    For a worker (``role``): the spools of slots ``workers`` and up but its own (``workers`` shrank;
    slot ``workers`` is a rolling restart's extra one, locked while a worker runs in it) and
    ``root`` itself (a one-process ``serve`` left it). For a one-process ``serve`` (``role`` None):
    every worker's spool."""
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):  # no spool directory yet: no orphans
        for path in root.iterdir():
            index = path.name.removeprefix(SPOOL_PREFIX)
            if not (path.name.startswith(SPOOL_PREFIX) and index.isdigit() and path.is_dir()):
                continue
            if role is None or (int(index) >= workers and int(index) != role.slot):
                found.append((int(index), path))
    spools = [path for _, path in sorted(found)]
    return [root, *spools] if role is not None else spools
