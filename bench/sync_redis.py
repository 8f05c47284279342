"""Benchmark of list sync into Redis: snapshot load, a 1M-change delta, decision latency during a swap.

Starts its own redis-server (bench/store_redis.py's), prints figures, asserts nothing.

    .venv/bin/python -m bench.sync_redis --snapshot 10000000 --delta 1000000
    .venv/bin/python -m bench.sync_redis --full-sync 100000000     # a gzip snapshot file through Syncer
    .venv/bin/python -m bench.sync_redis --snapshot 10000000 --no-delta --chunks 20000,5000,2000,1000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis

from bench.store_redis import start_redis
from bench.synthetic import CN_MOBILE
from dncgate.lists import sync as sync_module
from dncgate.lists.manifest import ListManifest, file_entry
from dncgate.lists.runner import SYNC_NICENESS
from dncgate.lists.sources import DropDirSource
from dncgate.lists.sync import Syncer, SyncJob
from dncgate.store.distinct import sorted_distinct
from dncgate.store.protocol import LoadResult
from dncgate.store.redis import RedisListStore, RedisSettings

BASE = 8613000000000
_T = TypeVar("_T")
DEFAULTS = RedisSettings(url="redis://127.0.0.1")


def snapshot_numbers(count: int, step: int = 7) -> array[int]:
    return array("q", range(BASE, BASE + count * step, step))


async def used_memory(url: str) -> int:
    client = aioredis.from_url(url)
    try:
        return int((await client.info("memory"))["used_memory"])
    finally:
        await client.aclose()


async def delta_sync(store: RedisListStore, workdir: Path, delta: int, adds: Sequence[int],
                     removes: Sequence[int]) -> None:
    """A delta of ``delta`` changes (adds of new numbers, removes of listed ones) through the sync engine."""
    drop = workdir / "drop-delta"
    drop.mkdir()
    path = drop / "delta-2.csv.gz"
    with gzip.open(path, "wt", compresslevel=1) as out:
        out.write("number,action\n")
        out.write("".join(f"+{n},add\n" for n in adds))
        out.write("".join(f"+{n},remove\n" for n in removes))
    live = next(s for s in await store.stats() if s.list_name == "national")
    await store.set_sync_state("national", {"sequence": "1", "version": live.version})
    manifest = ListManifest("national", "", None, (file_entry(path, 2, "csv"),))
    (drop / "2.manifest.json").write_bytes(manifest.to_bytes())
    syncer = Syncer(store, DropDirSource(drop), SyncJob(workdir=workdir / "w"))
    started = time.perf_counter()
    report = await syncer.sync_once()
    print(f"delta of {delta:,} changes through the sync engine (parse + apply): "
          f"{time.perf_counter() - started:.1f} s (+{report.added:,} -{report.removed:,})", flush=True)


async def latencies(store: RedisListStore, probes: list[int], stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        for number in probes:
            started = time.perf_counter()
            await store.facts("t", number)
            out.append(time.perf_counter() - started)


async def idle_decisions(store: RedisListStore, probes: list[int], seconds: float = 3.0) -> list[float]:
    """Latencies of 8 concurrent callers looking up ``probes`` for ``seconds``."""
    stop, samples = asyncio.Event(), list[float]()
    tasks = [asyncio.create_task(latencies(store, probes, stop, samples)) for _ in range(8)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return samples


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e6


async def run(
    snapshot: int, delta: int, workdir: Path, swap: bool = True, inline: bool = False,
    chunks: Sequence[tuple[int, int]] = ((DEFAULTS.sadd_chunk, DEFAULTS.load_batch),),
) -> None:
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
        if delta:
            await delta_sync(store, workdir, delta, [BASE + i * 7 + 3 for i in range(delta // 2)],
                             [BASE + i * 7 for i in range(delta - delta // 2)])
        # Decision latency: idle, then while a snapshot of the same size swaps in, per SADD chunk / batch.
        probes = [BASE + i * 7 for i in range(0, snapshot, max(1, snapshot // 1000))]
        modes: list[tuple[str, int, int]] = [("idle", 0, 0)]
        if swap and inline:
            modes.append(("inline", DEFAULTS.sadd_chunk, DEFAULTS.load_batch))
        modes += [("child", chunk, batch) for chunk, batch in chunks] if swap else []
        print("| mode | sadd_chunk | load_batch | load s | lookups | p50 us | p99 us | p99.9 us | max us |")
        print("|---|---|---|---|---|---|---|---|---|")
        for mode, chunk, batch in modes:
            stop, samples = asyncio.Event(), list[float]()
            tasks = [asyncio.create_task(latencies(store, probes, stop, samples)) for _ in range(8)]
            started = time.perf_counter()
            if mode == "idle":
                await asyncio.sleep(3)
            elif mode == "inline":
                await store.replace_list("national", snapshot_numbers(snapshot, step=7))
            else:
                child = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.sync_redis", "--child-load", url, "--snapshot", str(snapshot),
                    "--sadd-chunk", str(chunk), "--load-batch", str(batch),
                    cwd=Path(__file__).resolve().parent.parent)
                await child.wait()
            took = time.perf_counter() - started
            stop.set()
            await asyncio.gather(*tasks)
            await store.drain_cleanup()
            print(f"| {mode} | {chunk or '-'} | {batch or '-'} | {took:.1f} | {len(samples):,} | "
                  f"{pct(samples, 0.5):.0f} | {pct(samples, 0.99):.0f} | {pct(samples, 0.999):.0f} | "
                  f"{max(samples) * 1e6:.0f} |", flush=True)
        await store.drain_cleanup()
    finally:
        await store.close()
        process.terminate()
        process.wait(timeout=10)


async def child_load(url: str, snapshot: int, sadd_chunk: int, load_batch: int) -> None:
    os.nice(SYNC_NICENESS)  # as serve's periodic sync child does
    settings = RedisSettings(url=url, retire_grace=1.0, sadd_chunk=sadd_chunk, load_batch=load_batch)
    store = await RedisListStore.connect(settings)
    try:
        await store.replace_list("national", snapshot_numbers(snapshot, step=7))
    finally:
        await store.close()


def write_clustered_snapshot(path: Path, count: int, seed: int = 2026) -> tuple[array[int], array[int]]:
    """A sorted gzip snapshot of ``count`` clustered CN mobiles (like bench/synthetic.py, streamed:
    operator 10^4 blocks at varying density). Returns (lookup probes, listed numbers to remove)."""
    rng = random.Random(seed)
    densities = (0.02, 0.05, 0.1, 0.2, 0.4)
    needed = int(count / (10_000 * statistics.fmean(densities)) * 1.3) + 1
    pool = len(CN_MOBILE) * 10_000
    if needed > pool:
        raise SystemExit(f"{count:,} numbers need ~{needed:,} blocks, only {pool:,} exist")
    blocks = sorted(int(CN_MOBILE[b // 10_000] + f"{b % 10_000:04d}") for b in rng.sample(range(pool), needed))
    probes, listed = array("q"), array("q")
    every = max(1, count // 1_000_000)
    written = 0
    with gzip.open(path, "wb", compresslevel=1) as out:
        for block in blocks:
            take = min(count - written, max(1, int(10_000 * rng.choice(densities))))
            numbers = [block * 10_000 + m for m in sorted(rng.sample(range(10_000), take))]
            out.write(b"".join(b"+%d\n" % n for n in numbers))
            listed.extend(numbers[:: every])
            written += take
            if written >= count:
                break
    probes = listed[:: max(1, len(listed) // 1000)]
    return probes, listed


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mib() -> float:
    """The largest peak RSS of the ended child processes (the parse workers; not the running redis-server)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


async def full_sync(count: int, delta: int, workdir: Path) -> None:
    """Syncer.sync_once() of a ``count``-line gzip snapshot from a drop directory into Redis."""
    drop = workdir / "drop"
    drop.mkdir()
    path = drop / "full-1.txt.gz"
    started = time.perf_counter()
    probes, listed = write_clustered_snapshot(path, count)
    print(f"generated {count:,} lines: {path.stat().st_size / 2**20:.0f} MiB gzip in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    manifest = ListManifest("national", "", file_entry(path, 1, "lines"), ())
    (drop / "1.manifest.json").write_bytes(manifest.to_bytes())
    process, url = start_redis(workdir)
    store = await RedisListStore.connect(RedisSettings(url=url, retire_grace=1.0))
    phases: dict[str, float] = {}

    def timed(name: str, work: Callable[..., _T]) -> Callable[..., _T]:
        def wrapper(*args: Any, **kwargs: Any) -> _T:
            began = time.perf_counter()
            try:
                return work(*args, **kwargs)
            finally:
                phases[name] = time.perf_counter() - began
        return wrapper

    replace = store.replace_list

    async def timed_replace(*args: Any, **kwargs: Any) -> LoadResult:
        began = time.perf_counter()
        try:
            return await replace(*args, **kwargs)
        finally:
            phases["load"] = time.perf_counter() - began

    setattr(sync_module, "parse_file", timed("parse", sync_module.parse_file))  # noqa: B010 -- a patch
    setattr(sync_module, "sorted_distinct", timed("sort", sorted_distinct))  # noqa: B010
    store.replace_list = timed_replace  # type: ignore[method-assign]
    try:
        base = await used_memory(url)
        rss0 = peak_rss_mib()
        syncer = Syncer(store, DropDirSource(drop), SyncJob(workdir=workdir / "w"))
        started = time.perf_counter()
        report = await syncer.sync_once()
        total = time.perf_counter() - started
        mem = await used_memory(url) - base
        sort = f"{phases['sort']:.1f} s" if "sort" in phases else "none needed (the file was strictly ascending)"
        print(f"full sync of {count:,} lines ({report.loaded:,} loaded, {len(report.invalid)} invalid): "
              f"verify+parse+sort+load {total:.1f} s (parse {phases['parse']:.1f} s, sort/dedupe "
              f"{sort}, Redis load {phases['load']:.1f} s); Redis {mem / max(1, report.loaded):.2f} "
              f"B/number ({mem / 2**20:.0f} MiB); sync process peak RSS {peak_rss_mib():.0f} MiB "
              f"(before {rss0:.0f} MiB), parse workers' peak RSS {children_peak_rss_mib():.0f} MiB each", flush=True)
        if delta:
            half = delta // 2
            adds = [8613400000000 + i * 3 for i in range(half)]  # 86134: a mobile prefix not drawn above
            removes = listed[: delta - half]
            await delta_sync(store, workdir, delta, adds, removes)
        big = await idle_decisions(store, list(probes))
        print(f"decisions idle on the {count:,} list: p50 {pct(big, 0.5):.0f} us, p99 {pct(big, 0.99):.0f} us "
              f"({len(gc.get_objects()):,} GC-tracked objects in this process)", flush=True)
        # The same probes, same process, minutes apart at most: the list swapped for a small one.
        # If these match the figures above, list size is not what makes a decision slow.
        small = listed[: min(len(listed), 1_000_000)]
        await store.replace_list("national", small)
        await store.drain_cleanup()
        few = await idle_decisions(store, list(probes))
        print(f"| decisions, same run | {count:,}-number list | {len(small):,}-number list |")
        print("|---|---|---|")
        print(f"| p50 us | {pct(big, 0.5):.0f} | {pct(few, 0.5):.0f} |")
        print(f"| p99 us | {pct(big, 0.99):.0f} | {pct(few, 0.99):.0f} |", flush=True)
    finally:
        await store.close()
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--snapshot", type=int, default=10_000_000)
    parser.add_argument("--delta", type=int, default=1_000_000)
    parser.add_argument("--no-swap", action="store_true", help="skip the latency-during-swap part")
    parser.add_argument("--inline", action="store_true", help="also swap with the load in the bench process")
    parser.add_argument("--chunks", default=f"{DEFAULTS.sadd_chunk}",
                        help="comma-separated sadd_chunk[:load_batch] settings for the child-load swaps")
    parser.add_argument("--full-sync", type=int, metavar="N",
                        help="write an N-line gzip snapshot and time Syncer.sync_once() into Redis")
    parser.add_argument("--workdir", type=Path, help="where to write files (default: a temp dir)")
    parser.add_argument("--child-load", metavar="URL", help=argparse.SUPPRESS)  # the child of the "child" mode
    parser.add_argument("--sadd-chunk", type=int, default=DEFAULTS.sadd_chunk, help=argparse.SUPPRESS)
    parser.add_argument("--load-batch", type=int, default=DEFAULTS.load_batch, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_load:
        asyncio.run(child_load(args.child_load, args.snapshot, args.sadd_chunk, args.load_batch))
        return
    chunks = []
    for item in args.chunks.split(","):
        chunk, _, batch = item.partition(":")
        chunks.append((int(chunk), int(batch) if batch else DEFAULTS.load_batch))
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        if args.full_sync:
            asyncio.run(full_sync(args.full_sync, args.delta, Path(tmp)))
        else:
            asyncio.run(run(args.snapshot, args.delta, Path(tmp), swap=not args.no_swap, inline=args.inline,
                            chunks=chunks))


if __name__ == "__main__":
    main()
