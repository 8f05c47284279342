"""Outbound event-socket decisions per second and added latency, against a replaying fake FreeSWITCH.

    .venv/bin/python bench/esl_outbound.py [--calls-per-worker 40] [--national 200000] [--no-redis]

Each call: the fake dials the OutboundServer, sends a connect reply recorded from FreeSWITCH
1.11.1 (6 kB of channel data, destination rewritten), and answers every command as FreeSWITCH
did (command replies, CHANNEL_EXECUTE_COMPLETE from the recordings; announcements "play" in
zero time).  Half the calls dial a listed number (reject: myevents, multiset, api sched_hangup,
pre_answer, playback, hangup), half a clear one (allow: myevents, multiset, transfer).

Latency = connect reply written -> the verdict-carrying command (multiset) received, i.e. what
the gate adds before FreeSWITCH can act: channel-data parsing, the store lookup, decide(), audit
queueing, logging (myevents goes out in the multiset's write: no round trip of its own).
Throughput = completed calls / wall time at rising concurrency (1, 10, 50, 100 calls in flight).
The fake callers run in a child process (one event loop), the gate in this one, so the two do not
share a CPU core.  Gates on SQLite, and on Redis if a redis-server can be started on a free
127.0.0.1 port, without and with the in-process replica; every level runs on each in turn, and the
gate's CPU per check is this process's CPU time over the checks (``event loop``: the share of it
spent in the event loop's thread, the rest is the store's executor threads and the audit writer).
Logging is on (JSON to /dev/null). The gate runs on uvloop, as serve does (``--event-loop asyncio``:
on Python's own loop). Prints numbers; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "esl"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_freeswitch import FakeFreeSwitch, connect_reply, with_destination

from bench.loopback import add_gate_options, numbers, run_gate_bench
from dncgate.app import open_app
from dncgate.esl.check import esl_check_handler
from dncgate.esl.outbound import OutboundConfig, OutboundServer
from dncgate.model import TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.replica.store import ReplicaStore
from dncgate.settings import EslSettings, ReplicaSettings, Settings, StoreSettings

CONCURRENCY = (1, 10, 50, 100)
REPLY = connect_reply("outbound_1_85551003")
SETTINGS = EslSettings(strip_prefix="8")


async def run_level(port: int, listed: list[int], clear: list[int], workers: int, per_worker: int
                    ) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = 0

    async def worker(seed: int) -> None:
        nonlocal failures
        rng = random.Random(seed)
        for i in range(per_worker):
            number = rng.choice(listed if i % 2 else clear)
            fake = FakeFreeSwitch(with_destination(REPLY, f"8{str(number)[1:]}"), io_deadline=10)
            trace = await fake.call(port)
            last = trace.shorts()[-1] if trace.commands else ""
            if trace.latency is None or not (last.startswith(("hangup", "execute transfer"))):
                failures += 1
            else:
                latencies.append(trace.latency)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return time.perf_counter() - started, latencies, failures


async def peer_level(port: int, listed: list[int], clear: list[int], workers: int, per_worker: int
                     ) -> tuple[float, list[float], int]:
    """Run the fake FreeSWITCH callers in a child process, so they do not share the gate's CPU."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--peer", str(port), str(workers), str(per_worker),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(json.dumps([listed, clear]).encode())
    result = json.loads(out)
    return float(result["wall"]), [float(x) for x in result["latencies"]], int(result["failures"])


def peer_main(port: int, workers: int, per_worker: int) -> None:
    listed, clear = json.load(sys.stdin)
    wall, latencies, failures = asyncio.run(run_level(port, listed, clear, workers, per_worker))
    json.dump({"wall": wall, "latencies": latencies, "failures": failures}, sys.stdout)


async def open_variant(stack: AsyncExitStack, store: StoreSettings, national: int, replica: Path | None
                       ) -> tuple[int, list[int], list[int]]:
    """One gate (open_app, as serve opens it; ``replica``: its [replica] dir) and its OutboundServer."""
    settings = Settings(tenants={"default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"))},
                        store=store, replica=ReplicaSettings(enabled=replica is not None,
                                                             dir=replica or Path("unused")))
    # the store, the audit and the Gate, as serve opens them (create_store: the bench loads the list itself)
    app = await stack.enter_async_context(open_app(settings, create_store=True, replica=replica is not None))
    listed_all = numbers(national)
    await app.store.replace_list("national", listed_all)
    if isinstance(app.store, ReplicaStore):  # until the replica holds the list just loaded
        live = (await app.store.inner.facts("default", 1)).national_version
        while app.store.follower.lists["national"].version != live or app.store.follower.age() is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    rng = random.Random(1)
    listed = rng.sample(listed_all, 1000)
    listed_set = set(listed_all)
    clear = [n for n in numbers(5000, seed=99) if n not in listed_set]
    server = await stack.enter_async_context(OutboundServer(esl_check_handler(app.gate, SETTINGS),
                                                            OutboundConfig(port=0)))
    await peer_level(server.port, listed, clear, 4, 10)  # warm-up
    return server.port, listed, clear


async def bench_all(variants: dict[str, tuple[StoreSettings, Path | None]], national: int, per_worker: int) -> None:
    """Each concurrency level on every variant in turn (so load on the machine hits them alike); the
    gate's CPU (this process: the callers run in a child) per completed check."""
    async with AsyncExitStack() as stack:
        opened = {name: await open_variant(stack, store, national, replica)
                  for name, (store, replica) in variants.items()}
        for workers in CONCURRENCY:
            for name, (port, listed, clear) in opened.items():
                used, loop_used = time.process_time(), time.thread_time()
                wall, lat, failures = await peer_level(port, listed, clear, workers, per_worker)
                cpu, loop_cpu = time.process_time() - used, time.thread_time() - loop_used
                lat.sort()
                ms = [x * 1000 for x in lat]
                q = statistics.quantiles(ms, n=100) if len(ms) >= 2 else ms * 99
                print(f"{name:7} conc={workers:4d} calls={len(lat) + failures:5d} "
                      f"calls/s={len(lat) / wall:8.0f} latency ms p50={q[49]:6.2f} p95={q[94]:6.2f} "
                      f"p99={q[98]:6.2f} max={ms[-1]:6.2f} failed={failures} "
                      f"gate CPU/check={cpu / max(1, len(lat)) * 1e6:6.0f} us "
                      f"({len(lat) / max(cpu, 1e-9):6.0f} checks/CPU-s; event loop {loop_cpu / max(cpu, 1e-9):4.0%})",
                      flush=True)


async def amain(args: argparse.Namespace, tmp: Path, redis_url: str | None) -> None:
    variants: dict[str, tuple[StoreSettings, Path | None]] = {
        "sqlite": (StoreSettings(path=tmp / "bench.sqlite3"), None)}
    if redis_url is None and not args.no_redis:
        print("redis   skipped: no redis-server could be started")
    elif redis_url is not None:
        variants["redis"] = (StoreSettings(backend="redis", url=redis_url), None)
        # The replica's gate on a database of its own: the two Redis gates' lists do not mix.
        variants["replica"] = (StoreSettings(backend="redis", url=redis_url.rsplit("/", 1)[0] + "/1"),
                               tmp / "replica")
    await bench_all(variants, args.national, args.calls_per_worker)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--peer":
        peer_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--calls-per-worker", type=int, default=40)
    parser.add_argument("--national", type=int, default=200_000, help="numbers on the national list")
    add_gate_options(parser, "FreeSWITCH")
    args = parser.parse_args()
    run_gate_bench(args, f"python {sys.version.split()[0]}, national list {args.national} numbers, "
                   f"{args.calls_per_worker} calls per concurrent caller, 50% listed (reject) / 50% clear (allow)",
                   lambda tmp, url: amain(args, tmp, url))


if __name__ == "__main__":
    main()
