"""``dncgate serve --workers 2`` as real processes: a supervisor, two workers on one accept queue per door.

SQLite store, FastAGI on a loopback port; a fake Asterisk (``tests.core.test_audit_kill``'s call)
places the checks; which worker decided a call is in its ``decision.*`` log line (``pid``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from tests.core.test_audit_kill import DNCGATE, audited, events, gate_config, one_call, until
from tests.core.test_audit_orphans import segment, segment_names

DECISIONS = ("decision.allowed", "decision.rejected")
MAX_CALLS = 20_000  # bound of every calling loop


async def start_supervisor(config: Path, log: Path, workers: int = 2) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGATE_")}
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            str(DNCGATE), "--config", str(config), "serve", "--workers", str(workers),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=env)


async def call(port: int, i: int) -> str | None:
    """One call; its verdict, or None when the gate sent none (refused, reset, closed early)."""
    received: dict[str, str] = {}
    try:
        await asyncio.wait_for(one_call(port, i, received), 30)
    except (OSError, asyncio.IncompleteReadError, TimeoutError):
        return None
    return next(iter(received.values()), None)


def deciders(log: Path) -> set[int]:
    """The pids that decided a call."""
    return {int(str(e["pid"])) for name in DECISIONS for e in events(log, name)}


def ready_pids(log: Path) -> list[int]:
    return [int(str(e["pid"])) for e in events(log, "supervisor.worker_ready")]


async def calls_until(port: int, condition: object, first: int = 0) -> tuple[int, int]:
    """Sequential calls until ``condition()`` holds; (calls placed, calls with no verdict)."""
    failed = 0
    for placed, i in enumerate(range(first, first + MAX_CALLS)):
        if callable(condition) and condition():
            return placed, failed
        if await call(port, i) is None:
            failed += 1
    raise AssertionError(f"not within {MAX_CALLS} calls")


async def stop(gate: asyncio.subprocess.Process) -> int:
    gate.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(gate.wait(), 60)


async def two_ready(gate: asyncio.subprocess.Process, log: Path) -> set[int]:
    """The pids of the first two workers that reported ready (the supervisor still running)."""
    await until(lambda: len(ready_pids(log)) >= 2 or gate.returncode is not None, "two workers ready")
    assert gate.returncode is None, log.read_text()[-3000:]  # noqa: ASYNC240 (only for the failure message)
    return set(ready_pids(log))


async def test_two_workers_answer_a_killed_one_is_respawned_sigterm_exits_0(tmp_path: Path) -> None:
    config, port = await gate_config(tmp_path)
    log = tmp_path / "gate.log"
    gate = await start_supervisor(config, log)
    try:
        workers = await two_ready(gate, log)
        assert len(workers) == 2
        assert gate.pid not in workers
        placed, failed = await calls_until(port, lambda: deciders(log) >= workers)
        assert failed == 0
        assert placed >= 2

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        await until(lambda: len(ready_pids(log)) >= 3, "a worker respawned")
        (died,) = events(log, "supervisor.worker_died")
        assert died["pid"] == victim
        assert died["code"] == -signal.SIGKILL
        respawned = set(ready_pids(log)) - workers
        assert len(respawned) == 1
        survivor = workers - {victim}
        placed, failed = await calls_until(port, lambda: deciders(log) >= respawned | survivor, first=MAX_CALLS)
        assert failed == 0
        assert await stop(gate) == 0
    finally:
        if gate.returncode is None:
            gate.kill()
            await gate.wait()
    assert [e["clean"] for e in events(log, "supervisor.stopped")] == [True]
    for pid in survivor | respawned:  # each worker stopped by itself, after the supervisor's SIGTERM
        assert any(e["pid"] == pid and e["code"] == 0 for e in events(log, "supervisor.worker_exited"))


async def test_a_rolling_restart_under_sequential_calls_drops_none(tmp_path: Path) -> None:
    config, port = await gate_config(tmp_path)
    log = tmp_path / "gate.log"
    gate = await start_supervisor(config, log)
    try:
        old = await two_ready(gate, log)
        _placed_before, failed_before = await calls_until(port, lambda: deciders(log) >= old)

        calling = asyncio.create_task(calls_until(
            port, lambda: bool(events(log, "supervisor.restart_finished")), first=MAX_CALLS))
        gate.send_signal(signal.SIGUSR2)
        placed, failed = await asyncio.wait_for(calling, 300)
        new = set(ready_pids(log)) - old
        _after, failed_after = await calls_until(port, lambda: deciders(log) >= new, first=2 * MAX_CALLS)
        assert await stop(gate) == 0
    finally:
        if gate.returncode is None:
            gate.kill()
            await gate.wait()
    assert len(new) == 2
    assert (failed_before, failed, failed_after) == (0, 0, 0), f"{failed} of {placed} calls failed in the restart"
    assert placed >= 2  # calls were being placed while the workers were replaced
    retired = [e for e in events(log, "supervisor.worker_exited") if e["pid"] in old]
    assert sorted(int(str(e["pid"])) for e in retired) == sorted(old)
    assert {e["code"] for e in retired} == {0}
    assert not events(log, "supervisor.worker_died")


async def test_a_record_left_in_the_spool_of_a_slot_that_is_gone_is_replayed_once(tmp_path: Path) -> None:
    config, _port = await gate_config(tmp_path)
    orphan = tmp_path / "gate.sqlite3.audit-spool" / "worker-5"  # left when [serve] workers was 6
    segment(orphan, 3, 4242)
    log = tmp_path / "gate.log"
    gate = await start_supervisor(config, log)
    try:
        await two_ready(gate, log)
        await until(lambda: events(log, "audit.spool_replayed"), "the adopted segment replayed")
        assert await stop(gate) == 0
    finally:
        if gate.returncode is None:
            gate.kill()
            await gate.wait()
    (adopted,) = events(log, "audit.orphan_spool_adopted")
    assert (adopted["orphan"], adopted["segments"]) == (str(orphan), 1)
    assert (await audited(tmp_path / "gate.sqlite3")).count("id4242") == 1
    assert segment_names(orphan) == []
    assert not events(log, "audit.orphan_spool_failed")


def test_workers_refuse_what_runs_once_per_host(tmp_path: Path) -> None:
    config = tmp_path / "dncgate.toml"
    config.write_text('[store]\npath = "gate.sqlite3"\n[early_warning]\nenabled = true\n')
    done = subprocess.run([str(DNCGATE), "--config", str(config), "serve", "--workers", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "early_warning.enabled runs once per host" in done.stderr
