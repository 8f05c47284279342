"""Benchmark of the Redis list store: memory per number, load time, lookup throughput and latency.

Starts its own redis-server on a free 127.0.0.1 port (set-max-intset-entries 1000000), loads
synthetic national lists clustered in operator blocks the way real registrations are, prints the
figures and stops the server. Not a test: it asserts nothing.

    .venv/bin/python bench/store_redis.py                 # 1M and 10M numbers
    .venv/bin/python bench/store_redis.py --sizes 1000000
    .venv/bin/python -m bench.store_redis --sizes 100000 --cluster   # also on 3 masters + 3 replicas

``--cluster`` runs the lookups again on a Redis Cluster of 6 local redis-servers (the test suite's
``tests.store.cluster_lab``), side by side with the single server.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from dncgate.store.redis import RedisListStore, RedisSettings

# Chinese mobile operator prefixes (86 + 13x..19x): a few hundred 10^6-number HLR ranges are picked
# among them; inside a range, 10^4-number segments are either empty, sparse or dense.
OPERATOR_PREFIXES = [86130 + i for i in range(70)]


def synthetic_numbers(count: int, seed: int = 42) -> list[int]:
    """``count`` distinct numbers clustered like registrations: dense in some 10^4..10^6 ranges."""
    rng = random.Random(seed)
    ranges = rng.sample(
        [p * 10**8 + hlr * 10**6 for p in OPERATOR_PREFIXES for hlr in range(100)], k=min(7000, max(300, count // 3000))
    )
    numbers: set[int] = set()
    while len(numbers) < count:
        base = rng.choice(ranges) + rng.randrange(100) * 10**4  # one 10^4 segment of the HLR range
        density = rng.choice((0.01, 0.05, 0.2, 0.4, 0.6))
        numbers.update(base + m for m in rng.sample(range(10**4), int(10**4 * density)))
    unique = list(numbers)[:count]
    rng.shuffle(unique)
    return unique


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--set-max-intset-entries", "1000000", "--lazyfree-lazy-user-del", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


async def concurrent_facts(store: RedisListStore, probes: list[int], concurrency: int) -> None:
    queue = iter(probes)
    latencies: list[float] = []
    listed = 0

    async def worker() -> None:
        nonlocal listed
        for number in queue:
            t0 = time.perf_counter()
            facts = await store.facts("acme", number)
            latencies.append(time.perf_counter() - t0)
            listed += facts.national is not None

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(f"facts() x{concurrency:<4} conc {len(probes) / elapsed:,.0f} lookups/s  "
          f"p50={percentile(latencies, 0.5) * 1e6:.0f} us  p99={percentile(latencies, 0.99) * 1e6:.0f} us  "
          f"(listed {listed:,}/{len(probes):,})")


def probes_of(numbers: list[int], lookups: int) -> list[int]:
    """Half listed numbers, half their unlisted neighbours, shuffled."""
    probes = random.Random(1).sample(numbers, lookups // 2)
    probes += [n + 1 for n in random.Random(2).sample(numbers, lookups - len(probes))]
    random.Random(3).shuffle(probes)
    return probes


async def sequential_facts(store: RedisListStore, probes: list[int], label: str) -> None:
    """Single caller, nothing else running: the latency a call in the switch sees."""
    latencies: list[float] = []
    for number in probes[:5000]:
        t0 = time.perf_counter()
        await store.facts("acme", number)
        latencies.append(time.perf_counter() - t0)
    latencies.sort()
    print(f"facts() sequential  p50={percentile(latencies, 0.5) * 1e6:.0f} us  "
          f"p99={percentile(latencies, 0.99) * 1e6:.0f} us  ({len(latencies) / sum(latencies):,.0f}/s)  {label}")


async def bench_cluster(url: str, count: int, lookups: int, concurrency_max: int) -> None:
    """The lookups of ``bench_size`` on a cluster: each lookup goes to the masters of four slots."""
    numbers = synthetic_numbers(count)
    probes = probes_of(numbers, lookups)
    store = await RedisListStore.connect(RedisSettings(url=url, cluster=True, retire_grace=0.5, max_connections=64))
    try:
        started = time.perf_counter()
        result = await store.replace_list("national", numbers)
        load_s = time.perf_counter() - started
        print(f"\n== cluster: {count:,} numbers, load {load_s:.2f} s ({result.loaded / load_s:,.0f} numbers/s)")
        await sequential_facts(store, probes, "cluster")
        for concurrency in sorted({16, concurrency_max}):
            await concurrent_facts(store, probes, concurrency)
    finally:
        await store.close()


async def bench_size(url: str, count: int, lookups: int, concurrency_max: int) -> None:
    raw = aioredis.Redis.from_url(url)
    await raw.flushall()
    numbers = synthetic_numbers(count)
    probes = probes_of(numbers, lookups)

    store = await RedisListStore.connect(RedisSettings(url=url, retire_grace=0.5, max_connections=64))
    try:
        before = int((await raw.info("memory"))["used_memory"])
        started = time.perf_counter()
        result = await store.replace_list("national", numbers)
        load_s = time.perf_counter() - started
        after = int((await raw.info("memory"))["used_memory"])
        pointer = await raw.get("dnc:{national}:ptr")
        print(f"\n== {count:,} numbers (loaded {result.loaded:,}, duplicates {result.duplicates:,})")
        print(f"pointer             {pointer.decode() if pointer else None}")
        print(f"memory              {(after - before) / result.loaded:.2f} B/number "
              f"({(after - before) / 2**20:.1f} MiB used_memory delta)")
        print(f"load                {load_s:.2f} s ({result.loaded / load_s:,.0f} numbers/s, incl. sort/dedupe)")

        await sequential_facts(store, probes, "single server")

        # Many concurrent calls from one process (auto-pipelined over the lookup connection).
        for concurrency in sorted({16, concurrency_max}):
            await concurrent_facts(store, probes, concurrency)

        # Raw pipelined SISMEMBERs of the block keys: what Redis itself sustains from one client.
        k = int(result and (await store.stats())[0].detail.split("10^")[1].split(":")[0])
        version = result.version
        started = time.perf_counter()
        for i in range(0, len(probes), 1000):
            pipe = raw.pipeline(transaction=False)
            for number in probes[i : i + 1000]:
                block, member = divmod(number, 10**k)
                pipe.sismember(f"dnc:{{national}}:v{version}:b{block}", member)
            await pipe.execute()
        elapsed = time.perf_counter() - started
        print(f"raw SISMEMBER pipe  {len(probes) / elapsed:,.0f} lookups/s (batches of 1000)")
    finally:
        await store.close()
        await raw.flushall()
        await raw.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--cluster", action="store_true", help="also on a local 3+3 Redis Cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dncgate-bench-") as workdir:
        process, url = start_redis(Path(workdir))
        try:
            print(f"redis-server at {url}, set-max-intset-entries 1000000")
            for size in (int(s) for s in args.sizes.split(",")):
                await bench_size(url, size, args.lookups, args.concurrency)
        finally:
            process.terminate()
            process.wait(timeout=10)
        if args.cluster:
            from tests.store.cluster_lab import cluster_lab

            lab = cluster_lab(Path(workdir) / "cluster")
            try:
                for size in (int(s) for s in args.sizes.split(",")):
                    await bench_cluster(lab.url, size, args.lookups, args.concurrency)
            finally:
                lab.stop()


if __name__ == "__main__":
    asyncio.run(main())
