"""The embedded SQLite store: bytes per number, load time, lookups per second, facts() latency.

    .venv/bin/python bench/store_sqlite.py [--sizes 1000000,10000000] [--lookups 20000]

Targets (issue 2): 10M loaded <= 60 s. Bytes per number are reported, not targeted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import clustered_numbers, misses

from dncgate.store.sqlite import SqliteListStore


async def run(size: int, lookups: int, workdir: Path) -> None:
    numbers = clustered_numbers(size)
    path = workdir / f"bench-{size}.sqlite3"
    store = SqliteListStore(path)
    t0 = time.perf_counter()
    result = await store.replace_list("national", numbers)
    load_s = time.perf_counter() - t0
    await store.close()
    file_bytes = sum(p.stat().st_size for p in workdir.glob(f"bench-{size}.sqlite3*"))
    store = SqliteListStore(path)
    probe = numbers[:: max(1, len(numbers) // (lookups // 2))][: lookups // 2] + misses(lookups // 2)
    await store.facts("t", probe[0])  # open the reader
    latencies = []
    t0 = time.perf_counter()
    for number in probe:
        s = time.perf_counter_ns()
        await store.facts("t", number)
        latencies.append(time.perf_counter_ns() - s)
    sequential = len(probe) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(0, len(probe), 100):
        await asyncio.gather(*(store.facts("t", n) for n in probe[i : i + 100]))
    concurrent = len(probe) / (time.perf_counter() - t0)
    await store.close()
    latencies.sort()
    n = len(latencies)
    print(f"sqlite {size:>11,} numbers: load {load_s:6.1f} s ({result.loaded / load_s:,.0f}/s), "
          f"file {file_bytes / result.loaded:5.1f} B/number; facts() sequential {sequential:,.0f}/s "
          f"p50 {latencies[n // 2] / 1000:.0f} us p99 {latencies[int(n * 0.99)] / 1000:.0f} us; "
          f"100 concurrent {concurrent:,.0f}/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--lookups", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dncgate-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            asyncio.run(run(size, args.lookups, Path(tmp)))
            for p in Path(tmp).glob("*"):
                p.unlink()


if __name__ == "__main__":
    main()
