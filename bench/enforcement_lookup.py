"""The cost of the enforcement lookup in ``facts()``: the same lookups without originator keys
(before: today's round trip), with four keys and no standing (every call of a clean originator), and
with four keys one of which is restricted. SQLite on a temp file and Redis on its own redis-server
(127.0.0.1, free port), 100,000 numbers listed, sequential lookups (latency) and 64 concurrent
(throughput). Not a test: it asserts nothing.

    .venv/bin/python bench/enforcement_lookup.py [--lookups 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from dncgate.store.protocol import ListStore
from dncgate.store.redis import RedisListStore, RedisSettings
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.cases import SqliteCaseStore

KEYS = ("account:acme-out", "trunk:t1", "caller_id:8610500000", "entity:bank-1")
VARIANTS: dict[str, Sequence[str]] = {"no keys (before)": (), "4 keys, clear": KEYS, "4 keys, restricted": KEYS}


async def _measure(
    store: ListStore, numbers: list[int], keys: Sequence[str], lookups: int,
) -> tuple[float, float, float]:
    latencies = []
    for number in numbers[:lookups]:
        started = time.perf_counter_ns()
        await store.facts("acme", number, entity="bank-1", originators=keys)
        latencies.append((time.perf_counter_ns() - started) / 1000)
    started = time.perf_counter()

    async def worker(part: list[int]) -> None:
        for number in part:
            await store.facts("acme", number, entity="bank-1", originators=keys)

    await asyncio.gather(*(worker(numbers[i::64]) for i in range(64)))
    rate = len(numbers) / (time.perf_counter() - started)
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99)], rate


async def _run(name: str, store: ListStore, restrict: object, lookups: int) -> None:
    rng = random.Random(7)
    listed = rng.sample(range(8613000000000, 8613999999999), 100_000)
    await store.replace_list("national", listed)
    numbers = [rng.choice(listed) if rng.random() < 0.3 else rng.randrange(8613000000000, 8613999999999)
               for _ in range(lookups)]
    for variant, keys in VARIANTS.items():
        if variant.endswith("restricted"):
            await restrict()  # type: ignore[operator]
        for _ in range(2):  # warm-up round, then the measured one
            p50, p99, rate = await _measure(store, numbers, keys, lookups)
        print(f"{name:7} {variant:20} p50 {p50:7.1f} us  p99 {p99:7.1f} us  {rate:9.0f} lookups/s (64 concurrent)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(lookups: int, tmp: str, port: int) -> None:
    path = Path(tmp) / "bench.sqlite3"
    sqlite_store = SqliteListStore(path)

    async def restrict_sqlite() -> None:
        cases = SqliteCaseStore(path)
        await cases.cases("acme")
        await cases.close()
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO originator_standing VALUES ('acme', 'trunk:t1', 'r:10:2', 'case-1')")

    await _run("sqlite", sqlite_store, restrict_sqlite, lookups)
    await sqlite_store.close()
    for _ in range(100):
        try:
            redis_store = await RedisListStore.connect(RedisSettings(url=f"redis://127.0.0.1:{port}/0"))
            break
        except Exception:  # noqa: BLE001 -- the server is still starting
            await asyncio.sleep(0.05)
    else:
        raise SystemExit("redis-server did not start")

    async def restrict_redis() -> None:
        await redis_store._admin.hset("dnc:{e:acme}:standing", "trunk:t1", "r:10:2")

    await _run("redis", redis_store, restrict_redis, lookups)
    await redis_store.close()


def run(lookups: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        server = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
                                  stdout=subprocess.DEVNULL)
        try:
            asyncio.run(main(lookups, tmp, port))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=20_000)
    run(parser.parse_args().lookups)
