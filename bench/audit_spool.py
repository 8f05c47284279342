"""What the audit's write-ahead spool costs a call: Gate.check with and without it, side by side.

    .venv/bin/python bench/audit_spool.py [--calls 20000]

Runs Gate.check on a SQLite store (one listed number) alternating, call by call, "no spool" (the
sink only queues, as before the spool) and "spool" (one JSON line appended to an O_APPEND file
before check() returns), so that load on a shared machine hits both alike; also times
AuditSpool.append alone and one group commit (fsync, off the call's path). Prints numbers; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from dncgate.audit import AuditSink
from dncgate.audit_spool import AuditSpool
from dncgate.gate import CheckRequest, Gate
from dncgate.logs import configure
from dncgate.model import TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.store.sqlite import SqliteListStore

TENANTS = {"default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"))}


def summary(name: str, samples: list[int]) -> str:
    samples = sorted(samples)
    n = len(samples)
    return (f"{name:<26} p50={samples[n // 2] / 1000:7.2f} us  p99={samples[int(n * 0.99)] / 1000:7.2f} us  "
            f"mean={statistics.fmean(samples) / 1000:7.2f} us  (n={n})")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    configure("error")
    log = structlog.get_logger("bench")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteListStore(Path(tmp) / "bench.sqlite3")
        await store.replace_list("national", [12015550123])
        spool = AuditSpool.open(Path(tmp) / "spool", max_bytes=1 << 40)
        sinks = {"no spool": AuditSink(store, queue_size=1 << 30), "spool": AuditSink(store, queue_size=1 << 30,
                                                                                     spool=spool)}
        gates = {name: Gate(TENANTS, store, sink) for name, sink in sinks.items()}
        checks: dict[str, list[int]] = {name: [] for name in gates}
        for i in range(args.calls):
            order = list(gates.items())
            for name, gate in order if i % 2 else order[::-1]:  # alternate call by call, either first
                request = CheckRequest(dialled=f"20155{i % 100_000:05d}", door="agi")
                t0 = time.perf_counter_ns()
                await gate.check(request, log, defer=lambda _: None)  # the log line is not timed
                checks[name].append(time.perf_counter_ns() - t0)
        for name, samples in checks.items():
            print(summary(f"Gate.check, {name}", samples))
        record = (await gates["no spool"].check(CheckRequest(dialled="2015550123", door="agi"), log,
                                                 defer=lambda _: None)).record
        appends = []
        for _ in range(args.calls):
            t0 = time.perf_counter_ns()
            spool.append(record)
            appends.append(time.perf_counter_ns() - t0)
        print(summary("AuditSpool.append alone", appends))
        commits = []
        for _ in range(50):
            spool.append(record)
            t0 = time.perf_counter_ns()
            await spool.commit()
            commits.append(time.perf_counter_ns() - t0)
        print(summary("group commit (fsync)", commits) + "  -- in a thread, every spool_sync_ms")
        await spool.close()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
