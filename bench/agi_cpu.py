"""The gate's CPU per FastAGI check (issue 14's target: at most 0.2 ms), against a fake Asterisk 22.

    .venv/bin/python bench/agi_cpu.py [--sessions-per-caller 100] [--national 200000] [--no-redis]
                                      [--rounds 1] [--variants sqlite,redis,replica] [--profile FILE]

The gate runs in this process as ``serve`` opens it (``open_app`` with the audit spool, metrics and,
per variant, the in-process replica) behind the FastAGI door (``AgiServer`` + ``check_handler``).
The fake Asterisk clients run in a child process (one event loop): each session sends a header
recorded from Asterisk 22.10.1 (tests/fixtures/agi), requesting
``agi://127.0.0.1/check?tenant=default&purpose=marketing&category=&entity=`` with the number as
``agi_arg_1``, answers every command ``200 result=1`` as Asterisk does to ``EXEC MSet``, and reads
until the gate closes the socket. Half the sessions dial a listed number (reject), half a clear one
(allow). 10 and 50 sessions in flight (each caller runs its sessions one after another).

Per variant (SQLite; Redis and Redis + replica if a redis-server can be started on 127.0.0.1) and
concurrency: checks (sessions that got a verdict), the gate process's ``time.process_time()`` per
check (all its threads: the SQLite executor, the spool's group commit) and the event loop thread's
alone (``time.thread_time()``), checks per CPU-second, and latency p50/p99 from the header sent to
the verdict (the MSet) received. Logging is on (JSON lines to /dev/null), the audit on (spooled, written to the store).
``--profile FILE``: cProfile the gate process (CPU time) over the measured levels (pstats file).
Prints numbers; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import random
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loopback import add_gate_options, numbers, run_gate_bench
from dncgate.agi import AgiServer
from dncgate.agi.check import check_handler
from dncgate.app import open_app
from dncgate.model import TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.replica.store import ReplicaStore
from dncgate.settings import AuditSettings, ReplicaSettings, Settings, StoreSettings

CONCURRENCY = (10, 50)
REQUEST = "check?tenant=default&purpose=marketing&category=&entity="
# The header block of tests/fixtures/agi/fastagi-transcript-1795809160.17.log (Asterisk 22.10.1),
# the script and the arguments those of the shipped dialplan's check.
HEADER = (
    f"agi_network: yes\nagi_network_script: {REQUEST}\nagi_request: agi://127.0.0.1:4573/{REQUEST}\n"
    "agi_channel: PJSIP/uac-{seq:08x}\nagi_language: en\nagi_type: PJSIP\nagi_uniqueid: 1795809160.{seq}\n"
    "agi_version: 22.10.1+dfsg+~cs6.17.60671434-1\nagi_callerid: 15551230000\nagi_calleridname: dialer\n"
    "agi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: {n}\n"
    "agi_rdnis: unknown\nagi_context: from-uac\nagi_extension: {n}\nagi_priority: 1\nagi_enhanced: 0.0\n"
    "agi_accountcode: \nagi_threadid: 140613898872512\nagi_arg_1: {n}\n\n"
)
IO_DEADLINE = 10.0


# ---------------------------------------------------------------- the fake Asterisk (child process)

async def one_session(port: int, number: str, seq: int) -> tuple[float | None, str]:
    """One FastAGI session; (header sent -> verdict received in s, or None; the verdict or what went wrong)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latency: float | None = None
    verdict = "no verdict"
    try:
        async with asyncio.timeout(IO_DEADLINE):
            started = time.perf_counter()
            writer.write(HEADER.format(n=number, seq=seq).encode())
            await writer.drain()
            for _ in range(20):  # bounded: a check sends one command (two with channel fallbacks)
                line = await reader.readline()
                if not line:
                    break
                if line.startswith((b"EXEC MSet DNCGATE_VERDICT=", b'EXEC MSet "DNCGATE_VERDICT=')):
                    latency = time.perf_counter() - started
                    verdict = line.split(b"=", 2)[1].split(b",", 1)[0].decode()
                writer.write(b"200 result=1\n")
                await writer.drain()
    except (TimeoutError, OSError) as exc:
        verdict = type(exc).__name__
    finally:
        writer.close()
    return latency, verdict


async def run_level(port: int, listed: list[int], clear: list[int], callers: int, per_caller: int
                    ) -> tuple[float, list[float], dict[str, int]]:
    latencies: list[float] = []
    verdicts: dict[str, int] = {}

    async def caller(seed: int) -> None:
        rng = random.Random(seed)
        for i in range(per_caller):
            expect = "reject" if i % 2 else "allow"
            number = rng.choice(listed if expect == "reject" else clear)
            latency, verdict = await one_session(port, str(number)[1:], seed * 100_000 + i)
            ok = latency is not None and verdict == expect
            key = verdict if ok else f"failed:{verdict}(wanted {expect})"
            verdicts[key] = verdicts.get(key, 0) + 1
            if ok and latency is not None:
                latencies.append(latency)

    started = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    return time.perf_counter() - started, latencies, verdicts


async def peer_level(port: int, listed: list[int], clear: list[int], callers: int, per_caller: int
                     ) -> tuple[float, list[float], dict[str, int]]:
    """Run the fake Asterisk callers in a child process, so they do not share the gate's CPU."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--peer", str(port), str(callers), str(per_caller),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(json.dumps([listed, clear]).encode())
    result = json.loads(out)
    return float(result["wall"]), [float(x) for x in result["latencies"]], dict(result["verdicts"])


def peer_main(port: int, callers: int, per_caller: int) -> None:
    listed, clear = json.load(sys.stdin)
    wall, latencies, verdicts = asyncio.run(run_level(port, listed, clear, callers, per_caller))
    json.dump({"wall": wall, "latencies": latencies, "verdicts": verdicts}, sys.stdout)


# ---------------------------------------------------------------- the gate (this process)

async def open_variant(stack: AsyncExitStack, store: StoreSettings, national: int, tmp: Path, name: str,
                       replica: bool) -> tuple[int, list[int], list[int]]:
    """One gate as serve opens it (audit spool, metrics, [replica] when asked) and its FastAGI door."""
    settings = Settings(
        tenants={"default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"))},
        store=store, audit=AuditSettings(spool_dir=str(tmp / f"{name}.spool")),
        replica=ReplicaSettings(enabled=replica, dir=tmp / f"{name}.replica"),
    )
    app = await stack.enter_async_context(open_app(settings, create_store=True, metrics=True, spool=True,
                                                   replica=replica))
    listed_all = numbers(national)
    await app.store.replace_list("national", listed_all)
    await app.freshness.refresh()
    if isinstance(app.store, ReplicaStore):  # until the replica holds the list just loaded
        live = (await app.store.inner.facts("default", 1)).national_version
        for _ in range(1200):
            if app.store.follower.lists["national"].version == live and app.store.follower.age() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the replica did not load the national list within 60 s")
    rng = random.Random(1)
    listed = rng.sample(listed_all, 1000)
    listed_set = set(listed_all)
    clear = [n for n in numbers(5000, seed=99) if n not in listed_set]
    server = await stack.enter_async_context(AgiServer(check_handler(app.gate), host="127.0.0.1", port=0))
    await peer_level(server.port, listed, clear, 4, 20)  # warm-up
    return server.port, listed, clear


async def bench_all(variants: dict[str, tuple[StoreSettings, bool]], args: argparse.Namespace, tmp: Path) -> None:
    """Each concurrency level on every variant in turn (so load on the machine hits them alike)."""
    profile = cProfile.Profile(time.process_time) if args.profile else None
    async with AsyncExitStack() as stack:
        opened = {name: await open_variant(stack, store, args.national, tmp, name, replica)
                  for name, (store, replica) in variants.items()}
        for _ in range(args.rounds):
            for callers in CONCURRENCY:
                for name, (port, listed, clear) in opened.items():
                    await measure(name, port, listed, clear, callers, args.sessions_per_caller, profile)
    if profile is not None:
        profile.dump_stats(args.profile)


async def measure(name: str, port: int, listed: list[int], clear: list[int], callers: int, per_caller: int,
                  profile: cProfile.Profile | None) -> None:
    if profile is not None:
        profile.enable()
    used, used_main = time.process_time(), time.thread_time()
    wall, lat, verdicts = await peer_level(port, listed, clear, callers, per_caller)
    cpu, main = time.process_time() - used, time.thread_time() - used_main
    if profile is not None:
        profile.disable()
    checks = len(lat)
    ms = sorted(x * 1000 for x in lat)
    q = statistics.quantiles(ms, n=100) if len(ms) >= 2 else (ms or [float("nan")]) * 99
    failed = {k: v for k, v in verdicts.items() if k.startswith("failed")}
    print(f"{name:8} sessions={callers:3d} checks={checks:5d} "
          f"gate CPU/check={cpu / max(1, checks) * 1000:6.3f} ms ({checks / max(cpu, 1e-9):6.0f} checks/CPU-s; "
          f"loop thread {main / max(1, checks) * 1000:6.3f} ms) "
          f"latency p50={q[49]:6.2f} ms p99={q[98]:6.2f} ms checks/s={checks / wall:6.0f}"
          + (f" FAILED={failed}" if failed else ""), flush=True)


async def amain(args: argparse.Namespace, tmp: Path, redis_url: str | None) -> None:
    variants: dict[str, tuple[StoreSettings, bool]] = {"sqlite": (StoreSettings(path=tmp / "bench.sqlite3"), False)}
    if redis_url is None and not args.no_redis:
        print("redis    skipped: no redis-server could be started")
    elif redis_url is not None:
        variants["redis"] = (StoreSettings(backend="redis", url=redis_url), False)
        # The replica's gate on a database of its own: the two Redis gates' lists do not mix.
        variants["replica"] = (StoreSettings(backend="redis", url=redis_url.rsplit("/", 1)[0] + "/1"), True)
    if args.variants:
        variants = {name: variants[name] for name in args.variants.split(",") if name in variants}
    await bench_all(variants, args, tmp)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--peer":
        peer_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sessions-per-caller", type=int, default=100)
    parser.add_argument("--national", type=int, default=200_000, help="numbers on the national list")
    parser.add_argument("--rounds", type=int, default=1, help="times every level runs on every variant")
    parser.add_argument("--variants", default="", help="only these, comma-separated (sqlite,redis,replica)")
    parser.add_argument("--profile", help="write a cProfile of the gate process (measured levels) here")
    add_gate_options(parser, "Asterisk")
    args = parser.parse_args()
    run_gate_bench(args, f"python {sys.version.split()[0]}, national list {args.national} numbers, "
                   f"{args.sessions_per_caller} sessions per concurrent caller, 50% listed (reject) / 50% clear "
                   "(allow)",
                   lambda tmp, url: amain(args, tmp, url))


if __name__ == "__main__":
    main()
