"""The in-process replica (issue 14): list forms compared, then facts() and Gate.check with and without it.

    .venv/bin/python -m bench.replica [--sizes 1000000,10000000] [--lookups 20000] [--changes 1000000]
    .venv/bin/python -m bench.replica --national 1000000,253000000 [--before ../wt-before] [--workdir /work/tmp]

1. List forms, same clustered numbers (bench/synthetic.py): the compact file (per-block sorted
   arrays, dncgate.replica.compact), pyroaring's BitMap64 (if installed; not a dependency) and a
   Python set: bytes per number, build seconds, lookup microseconds (half hits, half misses).
2. On its own redis-server (loopback, free port) with the largest size as the national list:
   facts() on the Redis store (the round trip) against the replica, interleaved in rounds; then
   Gate.check through open_app with and without [replica], CPU microseconds per check (process
   time: what the gate spends, whatever the machine's load).
3. Changes applied per second: ``--changes`` numbers added with one add_numbers; the time from the
   follower's next poll to its having applied them.
4. ``--national N,...`` (bench/replica_national.py): for each N, N clustered numbers into a real
   redis-server through replace_list, then gate processes (bench/replica_gate.py, as serve opens the
   app) load the replica: build time, peak RSS, file size, RSS and Pss of one and of two processes
   mapping the file, facts()/Gate.check CPU and latency; with ``--before WORKTREE`` the same with
   that worktree's venv, alternately, in the same run.
Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from bench.store_redis import start_redis
from bench.synthetic import clustered_numbers, misses
from dncgate.app import open_app
from dncgate.gate import CheckRequest
from dncgate.model import Originator
from dncgate.replica.compact import CompactList, write
from dncgate.replica.store import ReplicaStore
from dncgate.settings import load
from dncgate.store.redis import RedisListStore, RedisSettings

log = structlog.get_logger("bench")


def _lookup_us(contains: Callable[[int], bool], probes: list[int]) -> float:
    started = time.perf_counter_ns()
    for number in probes:
        contains(number)
    return (time.perf_counter_ns() - started) / len(probes) / 1000


def forms(size: int, lookups: int, workdir: Path) -> None:
    numbers = clustered_numbers(size)
    rng = random.Random(3)
    probes = rng.sample(numbers, lookups // 2) + misses(lookups // 2)
    rng.shuffle(probes)
    rows: list[tuple[str, float, float, float]] = []
    started = time.perf_counter()
    path = workdir / f"bench-{size}.dnc"
    file_size = write(path, numbers)
    compact = CompactList.open(path)
    rows.append((f"compact ({compact.width}-bit members)", file_size / size, time.perf_counter() - started,
                 statistics.median(_lookup_us(compact.__contains__, probes) for _ in range(5))))
    try:
        from pyroaring import BitMap64

        started = time.perf_counter()
        bitmap = BitMap64(numbers)
        built = time.perf_counter() - started
        bitmap.run_optimize()
        rows.append(("pyroaring BitMap64 (serialized)", len(bitmap.serialize()) / size, built,
                     statistics.median(_lookup_us(bitmap.__contains__, probes) for _ in range(5))))
    except ImportError:
        print("  (pyroaring not installed: pip install pyroaring to compare)")
    if size <= 2_000_000:
        started = time.perf_counter()
        plain = set(numbers)
        built = time.perf_counter() - started
        set_bytes = sys.getsizeof(plain) + sum(sys.getsizeof(n) for n in numbers)
        rows.append(("Python set of int", set_bytes / size, built,
                     statistics.median(_lookup_us(plain.__contains__, probes) for _ in range(5))))
    print(f"\n{size:,} numbers: {'form':<34} {'B/number':>9} {'build s':>8} {'lookup us':>10}")
    for name, per, built, lookup in rows:
        print(f"{'':>{len(f'{size:,} numbers: ')}}{name:<34} {per:>9.2f} {built:>8.2f} {lookup:>10.2f}")
    compact.close()


def _settings(url: str, workdir: Path, replica: bool) -> object:
    return load(None, environ={
        "DNCGATE_STORE__BACKEND": "redis", "DNCGATE_STORE__URL": url,
        "DNCGATE_REPLICA__ENABLED": "true" if replica else "false", "DNCGATE_REPLICA__DIR": str(workdir / "replica"),
        "DNCGATE_TENANTS__ACME__REGION": "CN", "DNCGATE_TENANTS__ACME__HOURS__ENABLED": "false",
        "DNCGATE_AUDIT__SPOOL_DIR": "",
    })


async def lookups(url: str, workdir: Path, numbers: list[int], count: int, changes: int) -> None:
    store = await RedisListStore.connect(RedisSettings(url=url))
    started = time.perf_counter()
    await store.replace_list("national", numbers)
    print(f"\nRedis: national list of {len(numbers):,} loaded in {time.perf_counter() - started:.1f} s")
    rng = random.Random(5)
    probes = rng.sample(numbers, count // 2) + misses(count // 2)
    rng.shuffle(probes)
    keys = ("account:a1", "entity:bank-1")
    async with open_app(_settings(url, workdir, True), replica=True) as with_replica, \
            open_app(_settings(url, workdir, False)) as without:  # type: ignore[arg-type]
        replica = with_replica.store
        assert isinstance(replica, ReplicaStore)
        started = time.perf_counter()
        await replica.follower.wait_ready()
        print(f"replica loaded (compact file written) in {time.perf_counter() - started:.1f} s")
        await _facts_side_by_side(store, replica, probes, keys)
        await _checks_side_by_side(without, with_replica, probes)
        print(f"replica answered {replica.answered}")
        await _changes(store, replica, changes)
    await store.close()


async def _facts_side_by_side(store: RedisListStore, replica: ReplicaStore, probes: list[int],
                              keys: tuple[str, ...]) -> None:
    times: dict[str, list[float]] = {"round trip": [], "replica": []}
    cpu: dict[str, list[float]] = {"round trip": [], "replica": []}
    for _ in range(5):
        for name, target in (("round trip", store), ("replica", replica)):
            wall, used = time.perf_counter_ns(), time.process_time_ns()
            for number in probes:
                await target.facts("acme", number, entity="bank-1", originators=keys)
            times[name].append((time.perf_counter_ns() - wall) / len(probes) / 1000)
            cpu[name].append((time.process_time_ns() - used) / len(probes) / 1000)
    print(f"facts(), {len(probes):,} sequential, median of 5 interleaved rounds:")
    for name in times:
        print(f"  {name:<11} wall {statistics.median(times[name]):7.1f} us/lookup   "
              f"CPU {statistics.median(cpu[name]):7.1f} us/lookup")


async def _checks_side_by_side(without: object, with_replica: object, probes: list[int]) -> None:
    cpu: dict[str, list[float]] = {"without replica": [], "with replica": []}
    for _ in range(5):
        for name, app in (("without replica", without), ("with replica", with_replica)):
            used = time.process_time_ns()
            for number in probes:
                request = CheckRequest(f"+{number}", door="bench", tenant="acme", purpose="marketing",
                                       originator=Originator(account="a1", entity="bank-1"))
                await app.gate.check(request, log)  # type: ignore[attr-defined]
            await asyncio.sleep(0)  # the deferred log lines and metrics: counted too
            cpu[name].append((time.process_time_ns() - used) / len(probes) / 1000)
    print("Gate.check (no door), CPU per check, median of 5 interleaved rounds:")
    for name, values in cpu.items():
        print(f"  {name:<16} {statistics.median(values):7.1f} us   ({1e6 / statistics.median(values):,.0f} checks "
              "per CPU-second)")


async def _changes(store: RedisListStore, replica: ReplicaStore, changes: int) -> None:
    added = list(range(8619900000000, 8619900000000 + changes))
    before = replica.follower.changes_applied
    started = time.perf_counter()
    await store.add_numbers("national", added)
    written = time.perf_counter() - started
    started = time.perf_counter()
    while replica.follower.changes_applied < before + changes:  # noqa: ASYNC110 -- a counter, no event to wait on
        await asyncio.sleep(0.001)
    applied = time.perf_counter() - started
    print(f"{changes:,} changes: add_numbers {written:.2f} s; the replica applied them {applied:.2f} s later "
          f"({changes / applied:,.0f} changes/s)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--lookups", type=int, default=20000)
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--national", help="comma-separated list sizes: the replica at national size")
    parser.add_argument("--before", type=Path, help="with --national: a worktree of the code to compare against")
    parser.add_argument("--workdir", type=Path, help="where to write files (default: the system's temp dir)")
    args = parser.parse_args()
    if args.national:
        from bench.replica_national import national

        await national([int(s) for s in args.national.split(",")], args.lookups, args.before, args.workdir)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for size in sizes:
            forms(size, args.lookups, workdir)
        process, url = start_redis(workdir)
        try:
            await lookups(url, workdir, clustered_numbers(max(sizes)), args.lookups, args.changes)
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
