"""One gate process with the replica, for ``bench/replica.py --national``: not run by hand.

    PYTHON bench/replica_gate.py --url redis://127.0.0.1:PORT --dir DIR --probes FILE

Opens the app as ``serve`` does with ``[replica] enabled`` (the follower loads the national list into
a compact file in DIR, or maps the one another process wrote), prints one JSON line when the replica
is ready (load seconds, peak RSS), then answers commands read from stdin, one JSON line each:
``lookups`` (facts() and Gate.check on the probes: CPU and wall), ``contains`` (the compact file's
lookup alone: CPU ns), ``touch`` (reads every page of the
mapped file: the whole file resident), ``exit``. Imports only dncgate, so any worktree's venv runs it
(the before/after comparison runs the same script against both).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import structlog

from dncgate.app import open_app
from dncgate.gate import CheckRequest
from dncgate.model import Originator
from dncgate.settings import load

log = structlog.get_logger("bench")


def _settings(url: str, replica_dir: Path) -> Any:
    return load(None, environ={
        "DNCGATE_STORE__BACKEND": "redis", "DNCGATE_STORE__URL": url,
        "DNCGATE_REPLICA__ENABLED": "true", "DNCGATE_REPLICA__DIR": str(replica_dir),
        "DNCGATE_TENANTS__ACME__REGION": "CN", "DNCGATE_TENANTS__ACME__HOURS__ENABLED": "false",
        "DNCGATE_AUDIT__SPOOL_DIR": "",
    })


def _rss_mib(field: str = "VmRSS") -> float:
    """VmRSS, or VmHWM (the peak: of this program only, where ru_maxrss counts the forking parent's too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return -1.0


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def _lookups(app: Any, probes: list[int], rounds: int = 5) -> dict[str, Any]:
    store = app.store
    keys = ("account:a1", "entity:bank-1")
    cpu, wall, single = [], [], []
    for _ in range(rounds):
        used, began = time.process_time_ns(), time.perf_counter_ns()
        for number in probes:
            one = time.perf_counter_ns()
            await store.facts("acme", number, entity="bank-1", originators=keys)
            single.append(time.perf_counter_ns() - one)
        cpu.append((time.process_time_ns() - used) / len(probes) / 1000)
        wall.append((time.perf_counter_ns() - began) / len(probes) / 1000)
    checks = []
    for _ in range(rounds):
        used = time.process_time_ns()
        for number in probes:
            request = CheckRequest(f"+{number}", door="bench", tenant="acme", purpose="marketing",
                                   originator=Originator(account="a1", entity="bank-1"))
            await app.gate.check(request, log)
        await asyncio.sleep(0)  # the deferred log lines and metrics: counted too
        checks.append((time.process_time_ns() - used) / len(probes) / 1000)
    single.sort()
    return {"facts_cpu_us": statistics.median(cpu), "facts_wall_us": statistics.median(wall),
            "facts_p50_us": single[len(single) // 2] / 1000, "facts_p99_us": single[len(single) * 99 // 100] / 1000,
            "check_cpu_us": statistics.median(checks), "answered": dict(store.answered)}


def _contains(app: Any, probes: list[int], rounds: int = 9) -> dict[str, float]:
    """``number in compact`` alone (the national list's file), CPU ns per lookup, median of ``rounds``."""
    compact = app.store.follower.lists["national"].compact
    times = []
    for _ in range(rounds):
        used = time.process_time_ns()
        for number in probes:
            number in compact  # noqa: B015 -- the lookup is what is timed
        times.append((time.process_time_ns() - used) / len(probes))
    return {"contains_cpu_ns": statistics.median(times), "contains_min_ns": min(times)}


def _touch(app: Any) -> int:
    """Reads one byte of every page of the national list's mapped file; returns the file's size."""
    compact = app.store.follower.lists["national"].compact
    view = memoryview(compact._mapped)
    total = sum(view[::4096])
    view.release()
    return int(total >= 0) * len(compact._mapped)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--probes", type=Path, required=True)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    probes = array("q")
    probes.frombytes(args.probes.read_bytes())
    baseline = _rss_mib()
    started = time.perf_counter()
    async with open_app(_settings(args.url, args.dir), replica=True) as app:
        await app.store.follower.wait_ready(deadline=3600)
        compact = app.store.follower.lists["national"].compact
        _say(event="ready", seconds=time.perf_counter() - started, baseline_rss_mib=baseline,
             peak_rss_mib=_rss_mib("VmHWM"), rss_mib=_rss_mib(),
             file_bytes=compact.size_bytes if compact is not None else 0, numbers=len(compact or ()))
        while (line := (await asyncio.to_thread(sys.stdin.readline)).strip()) not in ("", "exit"):
            if line == "lookups":
                _say(event="lookups", **await _lookups(app, probes.tolist()))
            elif line == "contains":
                _say(event="contains", **_contains(app, probes.tolist()))
            elif line == "touch":
                _say(event="touched", bytes=_touch(app))


if __name__ == "__main__":
    asyncio.run(main())
