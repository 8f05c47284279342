"""Benchmark of list sync into Redis: snapshot load, a 1M-change delta, decision latency during a swap.

Starts its own redis-server (bench/store_redis.py's), prints figures, asserts nothing.

    .venv/bin/python -m bench.sync_redis --snapshot 10000000 --delta 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import resource
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path

import redis.asyncio as aioredis

from bench.store_redis import start_redis
from dncgate.lists.manifest import Manifest, file_entry
from dncgate.lists.sources import DropDirSource
from dncgate.lists.sync import Syncer, SyncSettings
from dncgate.store.redis import RedisListStore, RedisSettings

BASE = 8613000000000


def snapshot_numbers(count: int, step: int = 7) -> array[int]:
    return array("q", range(BASE, BASE + count * step, step))


async def used_memory(url: str) -> int:
    client = aioredis.from_url(url)
    try:
        return int((await client.info("memory"))["used_memory"])
    finally:
        await client.aclose()


async def latencies(store: RedisListStore, probes: list[int], stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        for number in probes:
            started = time.perf_counter()
            await store.facts("t", number)
            out.append(time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e6


async def run(snapshot: int, delta: int, workdir: Path, swap: bool = True) -> None:
    process, url = start_redis(workdir)
    store = await RedisListStore.connect(RedisSettings(url=url, retire_grace=1.0))
    try:
        base = await used_memory(url)
        numbers = snapshot_numbers(snapshot)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        await store.replace_list("national", numbers)
        load = time.perf_counter() - started
        mem = await used_memory(url) - base
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"snapshot {snapshot:,} numbers into Redis: {load:.1f} s, Redis {mem / snapshot:.2f} B/number, "
              f"bench process peak RSS {rss / 1024:.0f} MiB (before {rss0 / 1024:.0f} MiB)")
        # A delta of `delta` changes: half adds of new numbers, half removes of listed ones, via the sync engine.
        drop = workdir / "drop"
        drop.mkdir()
        path = drop / "delta-2.csv.gz"
        with gzip.open(path, "wt", compresslevel=1) as out:
            out.write("number,action\n")
            out.write("".join(f"+{BASE + i * 7 + 3},add\n" for i in range(delta // 2)))
            out.write("".join(f"+{BASE + i * 7},remove\n" for i in range(delta - delta // 2)))
        await store.set_sync_state("national", {"sequence": "1", "version": (await store.stats())[0].version})
        manifest = Manifest("national", "", None, (file_entry(path, 2, "csv"),))
        (drop / "2.manifest.json").write_bytes(manifest.to_bytes())
        syncer = Syncer(store, DropDirSource(drop), SyncSettings(workdir=workdir / "w"))
        started = time.perf_counter()
        report = await syncer.sync_once()
        print(f"delta of {delta:,} changes through the sync engine (parse + apply): "
              f"{time.perf_counter() - started:.1f} s (+{report.added:,} -{report.removed:,})")
        # Decision latency: idle, then while a snapshot of the same size swaps in.
        probes = [BASE + i * 7 for i in range(0, snapshot, max(1, snapshot // 1000))]
        modes = (("idle", "idle"), ("during swap, load in this process", "inline"),
                 ("during swap, load in a child process (serve's [sync] isolate)", "child"))
        for label, mode in modes if swap else ():
            stop, samples = asyncio.Event(), []
            tasks = [asyncio.create_task(latencies(store, probes, stop, samples)) for _ in range(8)]
            if mode == "idle":
                await asyncio.sleep(3)
            elif mode == "inline":
                await store.replace_list("national", snapshot_numbers(snapshot, step=7))
            else:
                child = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.sync_redis", "--child-load", url, "--snapshot", str(snapshot),
                    cwd=Path(__file__).resolve().parent.parent)
                await child.wait()
            stop.set()
            await asyncio.gather(*tasks)
            print(f"decisions {label}: {len(samples):,} lookups, p50 {pct(samples, 0.5):.0f} us, "
                  f"p99 {pct(samples, 0.99):.0f} us, max {max(samples) * 1e6:.0f} us, "
                  f"mean {statistics.fmean(samples) * 1e6:.0f} us")
        await store.drain_cleanup()
    finally:
        await store.close()
        process.terminate()
        process.wait(timeout=10)


async def child_load(url: str, snapshot: int) -> None:
    store = await RedisListStore.connect(RedisSettings(url=url, retire_grace=1.0))
    try:
        await store.replace_list("national", snapshot_numbers(snapshot, step=7))
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--snapshot", type=int, default=10_000_000)
    parser.add_argument("--delta", type=int, default=1_000_000)
    parser.add_argument("--no-swap", action="store_true", help="skip the latency-during-swap part")
    parser.add_argument("--child-load", metavar="URL", help=argparse.SUPPRESS)  # the child of the "child" mode
    args = parser.parse_args()
    if args.child_load:
        asyncio.run(child_load(args.child_load, args.snapshot))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.snapshot, args.delta, Path(tmp), swap=not args.no_swap))


if __name__ == "__main__":
    main()
