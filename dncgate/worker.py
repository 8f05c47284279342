"""What a ``serve --workers N`` worker process learns from its supervisor (``dncgate.supervisor``).

The supervisor starts each worker with, besides ``DNCGATE_LISTEN_FDS`` (``dncgate.acceptor``):

* ``DNCGATE_WORKER_SLOT``: the worker's slot, 0 to N (N + 1 slots: a rolling restart runs one
  extra worker for a while). A slot is handed to one live worker at a time: the worker's audit
  spool is ``<spool_dir>/worker-<slot>``, so a worker started in a dead one's slot replays what
  that one left (the spool's flock allows one gate per spool);
* ``DNCGATE_READY_FD``: the write end of a pipe; the worker writes one byte to it once every door
  accepts (``report_ready``), which is what a rolling restart waits for.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["READY_FD_ENV", "SLOT_ENV", "WorkerRole", "worker_role"]

SLOT_ENV = "DNCGATE_WORKER_SLOT"
READY_FD_ENV = "DNCGATE_READY_FD"
READY_BYTE = b"R"


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process is worker ``slot`` of a supervisor."""

    slot: int
    ready_fd: int | None

    def spool_dir(self, spool: Path) -> Path:
        """This worker's own audit spool inside the configured one."""
        return spool / f"worker-{self.slot}"

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
