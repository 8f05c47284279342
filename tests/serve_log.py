"""A ``dncgate serve`` subprocess for a test, and its JSON log lines (stderr) read up to a bound."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class ServeLog:
    """serve's JSON log lines on stderr, read up to a bound (lines and seconds), never blocking forever.

    Read from the pipe's descriptor, not through a buffered reader: lines a buffered reader had
    taken in already would not wake ``select`` again (the wait would end only at its deadline)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        self.proc, self.fd, self.buffer = proc, proc.stderr.fileno(), b""
        self.other: list[bytes] = []  # lines that are no log record (an error before logging started)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)

    def until(self, event: str, deadline: float = 30.0) -> dict[str, Any]:
        """The next log record named ``event``; AssertionError when serve ends or says nothing for ``deadline`` s."""
        for _ in range(2000):
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    record = json.loads(line)
                except ValueError:
                    self.other.append(line[:500])
                    continue
                if isinstance(record, dict) and record.get("event") == event:
                    return dict(record)
            if not self.selector.select(deadline):
                break
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                break
            self.buffer += chunk
        raise AssertionError(f"no {event} from serve (exit {self.proc.poll()}; it said {self.other[-5:]})")


def prepare_store(command: str, config: Path, cwd: Path, national: Sequence[str]) -> str:
    """What an operator does before the first ``serve``: ``dncgate init`` (serve never creates its
    store) and a load of the national list (until then marketing calls are ``list_missing`` and
    /healthz answers 503). Returns init's output (it names the store)."""
    (cwd / "national.txt").write_text("".join(f"{number}\n" for number in national), encoding="utf-8")
    output = ""
    for args in (["init"], ["lists", "load", "--list", "national", "national.txt"]):
        done = subprocess.run([command, "--config", str(config), *args], cwd=cwd, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        output = output or done.stdout
    return output


@contextlib.contextmanager
def serve_process(argv: Sequence[str], cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], ServeLog]]:
    """``argv`` (a ``dncgate ... serve`` command line) running in ``cwd`` until the block ends, then
    killed if it still runs; its log is read through the ``ServeLog``."""
    proc = subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        yield proc, ServeLog(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
