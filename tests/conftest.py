"""Shared fixtures: a real redis-server on a free loopback port, started and stopped by the suite."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dncgate.store.protocol import ListStore
from tests import ports

if TYPE_CHECKING:
    from dncgate.service import Running
    from dncgate.settings import Settings
    from dncgate.store.redis import RedisSettings


# Tests that build a Gate themselves give the store this long: the 250 ms default is a production
# deadline, and a busy 2-core CI machine missed it (check_failed instead of the decision under test).
# Tests of the deadline itself set their own.
TEST_STORE_DEADLINE = 30.0
TEST_STORE_TIMEOUT_MS = 10_000  # the same for a test's configuration ([store] timeout_ms, at most 10 s)


def redis_test_settings(url: str) -> RedisSettings:
    """RedisSettings for a test that needs answers, not deadlines: the call-path defaults (250 ms
    socket, 1 s lookup) were missed on a busy machine. Tests of those deadlines build their own."""
    from dncgate.store.redis import RedisSettings

    return RedisSettings(url=url, socket_timeout=10.0, connect_timeout=10.0, pool_timeout=10.0,
                         lookup_deadline=TEST_STORE_DEADLINE)


def free_port() -> int:
    """A loopback port from the suite's pool (``tests.ports``): checked free, below the ephemeral
    range, never handed out twice, so a server started on it cannot meet a neighbour's port."""
    return ports.port()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not exited 5 s later."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass
class RedisServer:
    host: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run scripts/install-test-deps.sh")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind", self.host,
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--set-max-intset-entries", "1000000",
                "--lazyfree-lazy-user-del", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60  # a start-up guard, never expected to fire
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"redis-server did not start on {self.host}:{self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def flush(self) -> None:
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL SYNC\r\n")
            sock.recv(16)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer("127.0.0.1", free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """A test that runs the CLI configures structlog onto its captured stderr: undo that after it."""
    yield
    import structlog

    structlog.reset_defaults()



async def open_test_store(kind: str, tmp_path: Path, redis_server: RedisServer, **redis_settings: float) -> ListStore:
    """A fresh list store of ``kind`` (sqlite, or redis on the session server, flushed) for one test."""
    if kind == "sqlite":
        from dncgate.store.sqlite import SqliteListStore

        return SqliteListStore(tmp_path / "dncgate.sqlite3")
    from dncgate.store.redis import RedisListStore, RedisSettings

    redis_server.flush()
    return await RedisListStore.connect(RedisSettings(url=redis_server.url, **redis_settings))


def cli_store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region: str) -> Path:
    """The CLI on a throw-away SQLite store with one tenant in ``region``; no config file."""
    db = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("DNCGATE_STORE__PATH", str(db))
    monkeypatch.setenv("DNCGATE_TENANTS__DEFAULT__REGION", region)
    # the production 250 ms deadline is not what CLI tests are about: a busy machine missed it (exit 3)
    monkeypatch.setenv("DNCGATE_STORE__TIMEOUT_MS", str(TEST_STORE_TIMEOUT_MS))
    monkeypatch.delenv("DNCGATE_CONFIG", raising=False)
    return db


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``dncgate ARGV`` in process: exit code, stdout, stderr."""
    from dncgate.cli import main

    code = main(["--log-level", "error", *argv])
    out, err = capsys.readouterr()
    return code, out, err


async def create_store(config: Settings, lists: Mapping[str, Iterable[int]] | None = None) -> None:
    """What ``dncgate init`` does: the configured store created (serve never creates one); then
    ``lists`` loaded (name -> E.164 numbers as integers), as ``dncgate lists load`` would."""
    from dncgate.store.factory import open_store

    store = await open_store(config.store, create=True)
    try:
        await store.ping()
        for name, numbers in (lists or {}).items():
            await store.replace_list(name, numbers)
    finally:
        await store.close()


def serve_core_toml(tmp_path: Path, name: str = "dncgate") -> str:
    """The head of a test ``serve``'s configuration: a SQLite store ``NAME.sqlite3`` and a spool
    ``NAME-spool`` under ``tmp_path``, no AGI or HTTP door (the test calls the gate itself)."""
    return f"""
[store]
path = "{tmp_path / f'{name}.sqlite3'}"
timeout_ms = {TEST_STORE_TIMEOUT_MS}
[agi]
enabled = false
[http]
enabled = false
[audit]
spool_dir = "{tmp_path / f'{name}-spool'}"
"""


@contextlib.asynccontextmanager
async def serving(config: Settings, *, stop_within: float = 10.0,
                  lists: Mapping[str, Iterable[int]] | None = None,
                  clock: Callable[[], datetime] | None = None) -> AsyncIterator[Running]:
    """``dncgate serve`` on this loop for the block (no signal handlers); stopped when it ends.
    The store is created first, as ``dncgate init`` would (serve itself refuses a missing one),
    with ``lists`` loaded (see ``create_store``). ``clock``: the one serve injects (default the wall's)."""
    from dncgate.clock import utc_now
    from dncgate.service import serve

    await create_store(config, lists)
    ready: asyncio.Queue[Running] = asyncio.Queue()
    task = asyncio.create_task(serve(config, on_ready=ready.put_nowait, handle_signals=False,
                                     clock=clock or utc_now))
    started = asyncio.ensure_future(ready.get())
    await asyncio.wait({started, task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        started.cancel()
        if task.done():
            task.result()  # serve stopped before it was ready: its own error is the one to see
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise TimeoutError("dncgate serve was not ready within 60 s")
    running = started.result()
    try:
        yield running
    finally:
        running.stop.set()
        await asyncio.wait_for(task, stop_within)
