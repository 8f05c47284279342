"""kill -9 under load: every verdict a switch received has its audit record once the gate is back.

``dncgate serve`` runs as a child process (SQLite store, FastAGI on a loopback port); fake Asterisk
clients place checks concurrently and note each verdict's decision id as the ``EXEC MSet`` reaches
them; the gate is killed with SIGKILL mid-load, started again on the same store and spool, and the
store must then hold every noted decision (replayed from the spool), each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

from dncgate.store.sqlite import SqliteListStore
from tests.conftest import free_port

DNCGATE = Path(sys.executable).parent / "dncgate"
LISTED = 12015550123
CLIENTS = 8
KILL_AFTER = 150  # verdicts received before the kill
POLLS = 2_000  # bounded waits: condition polls, 10 ms apart


def header(i: int) -> bytes:
    number = "2015550123" if i % 3 == 0 else f"20155{i % 100_000:05d}"
    return (
        "agi_network: yes\nagi_network_script: check?tenant=default&purpose=marketing\n"
        "agi_request: agi://127.0.0.1/check?tenant=default&purpose=marketing\nagi_channel: PJSIP/uac-1\n"
        f"agi_uniqueid: {i}.1\nagi_callerid: 4001234567\nagi_extension: {number}\nagi_arg_1: {number}\n\n"
    ).encode()


async def one_call(port: int, i: int, received: dict[str, str]) -> None:
    """Play Asterisk for one call: answer every command; note the verdict when the MSet arrives."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(header(i))
        for _ in range(10):  # the check sends one MSet; a few commands at most
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                return
            if line.startswith(b"EXEC MSet "):
                variables = dict(v.split("=", 1) for v in line[10:].decode().strip().strip('"').split(","))
                received[variables["DNCGATE_DECISION_ID"]] = variables["DNCGATE_VERDICT"]
            writer.write(b"200 result=0\n")
            await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def client(port: int, first: int, received: dict[str, str], stop: asyncio.Event) -> None:
    for i in range(first, first + 100_000, CLIENTS):
        if stop.is_set():
            return
        try:
            await one_call(port, i, received)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            return  # the gate is gone


async def start_gate(config: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGATE_")}
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            str(DNCGATE), "--config", str(config), "serve", stdin=asyncio.subprocess.DEVNULL, stdout=out,
            stderr=out, env=env,
        )
    return proc


def events(log: Path, name: str) -> list[dict[str, object]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("event") == name:
                found.append(event)
    return found


async def until(condition: object, what: str) -> None:
    for _ in range(POLLS):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {POLLS} polls: {what}")


@contextlib.contextmanager
def _write_locked(db: Path) -> Iterator[None]:
    """Holds the SQLite file's write lock (BEGIN IMMEDIATE) until the block ends."""
    holder = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


async def audited(db: Path) -> list[str]:
    store = SqliteListStore(db)
    try:
        return [r.decision_id async for r in store.audit_export()]
    finally:
        await store.close()


async def gate_config(tmp_path: Path) -> tuple[Path, int]:
    """A SQLite gate with ``LISTED`` on the national list, FastAGI on a free loopback port, no HTTP."""
    db = tmp_path / "gate.sqlite3"
    seed = SqliteListStore(db)
    await seed.replace_list("national", [LISTED])
    await seed.close()
    port = free_port()
    config = tmp_path / "dncgate.toml"
    config.write_text(f"""\
[store]
path = "{db}"
[agi]
host = "127.0.0.1"
port = {port}
[http]
enabled = false
[tenants.default]
region = "US"
[tenants.default.hours]
enabled = false
""")
    return config, port


async def test_every_verdict_sent_before_a_kill_9_is_audited_after_restart(tmp_path: Path) -> None:
    config, port = await gate_config(tmp_path)
    db = tmp_path / "gate.sqlite3"
    log = tmp_path / "gate.log"
    gate = await start_gate(config, log)
    received: dict[str, str] = {}
    try:
        await until(lambda: events(log, "gate.started") or gate.returncode is not None, "the gate started")
        assert gate.returncode is None, log.read_text()[-3000:]
        stop = asyncio.Event()
        # The store's write lock is held meanwhile (a store slow to write): the gate still decides
        # (WAL readers are not blocked), its audit writer cannot commit, so records are in flight at
        # the kill whatever the machine's speed (a fast writer used to have stored them all).
        with _write_locked(db):
            clients = [asyncio.create_task(client(port, n, received, stop)) for n in range(CLIENTS)]
            await until(lambda: len(received) >= KILL_AFTER, f"{KILL_AFTER} verdicts")
            gate.send_signal(signal.SIGKILL)  # mid-load: clients are in every phase of a call
            await gate.wait()
            stop.set()
            await asyncio.gather(*clients)
    finally:
        if gate.returncode is None:
            gate.kill()
            await gate.wait()
    assert set(received.values()) == {"allow", "reject"}
    lost_before_restart = set(received) - set(await audited(db))
    assert lost_before_restart, "nothing was in flight at the kill: the test proves nothing"

    restarted = await start_gate(config, log)
    try:
        await until(lambda: events(log, "gate.started") and len(events(log, "gate.started")) == 2,
                    "the gate started again")
        await until(lambda: events(log, "audit.spool_replayed"), "the spool replayed")
    finally:
        restarted.send_signal(signal.SIGTERM)
        await restarted.wait()
    stored = await audited(db)
    assert set(received) <= set(stored), f"lost: {sorted(set(received) - set(stored))[:5]}"
    assert len(stored) == len(set(stored))  # replayed records are not added twice
    assert sum(int(str(e["records"])) for e in events(log, "audit.spool_replayed")) >= len(lost_before_restart)
