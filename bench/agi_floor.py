"""What a FastAGI check can cost at least on this host: the gate against stripped-down responders.

    .venv/bin/python bench/agi_floor.py [--rates 50,100] [--seconds 15] [--list-size 100000]

Issue 3's target is "within 0.25 ms of a do-nothing FastAGI responder at p50". This bench
takes Asterisk out (a fake Asterisk on loopback sends a real 22.10 header, answers every command
with ``200 result=0`` and times header sent -> our socket closed) and places RATE calls/s in all,
interleaved over the variants so that load on the shared machine hits each alike, each call to a
different unlisted number:

  noop          the do-nothing responder of bench/asterisk_calls.py (asyncio streams)
  codec         an asyncio.Protocol that decodes the header with dncgate's AGI codec and answers
                at once from data_received (no task, no await)
  +normalise    the same plus dncgate.numbers.normalise() of the number (phonenumbers)
  +decide       the same plus a local set lookup and policy.decide() (no store at all)
  +redis        the same, but the facts come from RedisListStore.facts() (one pipelined round trip)
  dncgate       ``dncgate serve`` (Redis store, the list loaded, audit on)

The steps between the variants are what each part of a check costs here. Prints numbers; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HEADER = (
    "agi_network: yes\nagi_network_script: check?tenant=acme&purpose=marketing&category=&entity=\n"
    "agi_request: agi://127.0.0.1/check?tenant=acme&purpose=marketing&category=&entity=\n"
    "agi_channel: PJSIP/uac-00000001\nagi_language: en\nagi_type: PJSIP\nagi_uniqueid: 1795809160.17\n"
    "agi_version: 22.10.1\nagi_callerid: 4001234567\nagi_calleridname: dialer\nagi_callingpres: 0\n"
    "agi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: {n}\nagi_rdnis: unknown\n"
    "agi_context: bench-dncgate\nagi_extension: {n}\nagi_priority: 1\nagi_enhanced: 0.0\nagi_accountcode: \n"
    "agi_threadid: 140000000000000\nagi_arg_1: {n}\n\n"
)
VARIANTS = ("noop", "codec", "+normalise", "+decide", "+redis", "dncgate")


# ---------------------------------------------------------------- responders (run as subprocesses)

def run_responder(mode: str, port: int, redis_url: str, list_size: int) -> None:
    """Serve one stripped-down variant on ``port`` until SIGTERM."""
    from bench.asterisk_calls import listed_numbers
    from dncgate.agi.codec import AgiDecoder
    from dncgate.audit_record import new_decision_id
    from dncgate.model import CallAttempt, Facts, ListHit, Originator, Purpose, TenantPolicy
    from dncgate.numbers import DialPlan, Subscriber, normalise
    from dncgate.policy import decide
    from dncgate.store.redis import RedisListStore, RedisSettings

    tenant = TenantPolicy(name="acme", dial_plan=DialPlan(region="US", technical_prefixes=("9",)))
    listed = set(listed_numbers(list_size)) if mode == "+decide" else set()

    class Responder(asyncio.Protocol):
        def __init__(self, store: RedisListStore | None) -> None:
            self.decoder = AgiDecoder()
            self.store = store
            self.asked = False
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.decoder.feed(data)
            if self.asked:
                if self.decoder.next_event() is not None:
                    self.transport.close()
                return
            request = self.decoder.read_header()
            if request is None:
                return
            self.asked = True
            if mode == "codec":
                self.transport.write(b"EXEC MSet DNCGATE_VERDICT=allow\n")
                return
            callee = normalise(request.args[0], tenant.dial_plan)
            if mode == "+normalise":
                self.transport.write(b"EXEC MSet DNCGATE_VERDICT=allow\n")
                return
            attempt = CallAttempt(
                tenant=tenant, originator=Originator(caller_id=request.get("callerid", "") or ""),
                purpose=Purpose(request.params.get("purpose", "marketing")), callee=callee, at=datetime.now(UTC),
            )
            if mode == "+redis" and self.store is not None and isinstance(callee, Subscriber):
                task = asyncio.get_running_loop().create_task(self.store.facts("acme", callee.digits))
                task.add_done_callback(lambda t: self.answer(attempt, t.result()))
                return
            hit = isinstance(callee, Subscriber) and callee.digits in listed
            national = ListHit("national", "bench") if hit else None
            self.answer(attempt, Facts(national=national, national_version="bench"))

        def answer(self, attempt: CallAttempt, facts: Facts) -> None:
            assert self.transport is not None
            d = decide(attempt, facts)
            self.transport.write(
                f"EXEC MSet DNCGATE_VERDICT={d.verdict.value},DNCGATE_REASON={d.reason.value},"
                f"DNCGATE_SIPCODE={d.sip_code or ''},DNCGATE_ANNOUNCEMENT={d.announcement or ''},"
                f"DNCGATE_DECISION_ID={new_decision_id()}\n".encode())

    async def serve() -> None:
        store = await RedisListStore.connect(RedisSettings(url=redis_url)) if mode == "+redis" else None
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Responder(store), "127.0.0.1", port, backlog=1024)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        server.close()
        if store is not None:
            await store.close()

    asyncio.run(serve())


# ---------------------------------------------------------------- the fake Asterisk

async def one_call(port: int, number: str, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter_ns()
    writer.write(HEADER.format(n=number).encode())
    await writer.drain()
    while await reader.readline():
        writer.write(b"200 result=0\n")
        await writer.drain()
    out.append((time.perf_counter_ns() - started) / 1000)
    writer.close()


async def interleaved(ports: dict[str, int], rate: float, seconds: float, first: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in ports}
    names = list(ports)
    calls = []
    for i in range(int(rate * seconds)):
        name = names[i % len(names)]
        number = f"2018{(first + i) * 2 + 1:06d}"  # odd: never on the list
        calls.append(asyncio.create_task(one_call(ports[name], number, results[name])))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*calls)
    return results


def pct(data: list[float], q: float) -> float:
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,100")
    parser.add_argument("--seconds", type=float, default=15.0, help="per rate; calls are split over the variants")
    parser.add_argument("--list-size", type=int, default=100_000)
    parser.add_argument("--responder", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.responder:
        run_responder(args.responder, args.port, args.redis_url, args.list_size)
        return

    from bench.asterisk_calls import NOOP_RESPONDER, listed_numbers
    from tests.conftest import RedisServer, free_port
    from tests.e2e.gate_process import GateProcess, load_lists

    work = Path(tempfile.mkdtemp(prefix="dncgate-bench-floor-"))
    redis = RedisServer("127.0.0.1", free_port(), work / "redis")
    redis.workdir.mkdir()
    redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    gate = GateProcess(work / "gate", redis.url)
    try:
        load_lists(redis.url, {"national": listed_numbers(args.list_size)})
        ports = {name: free_port() for name in VARIANTS}
        procs.append(subprocess.Popen([sys.executable, "-c", NOOP_RESPONDER, str(ports["noop"])],
                                      stdout=subprocess.PIPE))
        for name in VARIANTS[1:5]:
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--responder", name, "--port", str(ports[name]), "--redis-url", redis.url,
                 "--list-size", str(args.list_size)],
                stdout=subprocess.PIPE))
        for proc in procs:
            assert proc.stdout is not None
            proc.stdout.readline()
        gate.start()
        ports["dncgate"] = gate.agi_port
        print(f"list: {args.list_size:,} numbers in Redis; {len(VARIANTS)} variants, calls interleaved", flush=True)
        asyncio.run(interleaved(ports, 100, 2, 0))  # warm-up
        first = 1000
        for rate in (float(r) for r in args.rates.split(",")):
            results = asyncio.run(interleaved(ports, rate, args.seconds, first))
            first += int(rate * args.seconds)
            base50, base99 = pct(results["noop"], .5), pct(results["noop"], .99)
            print(f"\n{rate:.0f} calls/s: header sent -> socket closed (us), and minus noop")
            print(f"  {'variant':<12} {'calls':>5} {'p50':>6} {'p95':>6} {'p99':>6}   {'p50-noop':>8} {'p99-noop':>8}")
            for name in ports:
                data = results[name]
                print(f"  {name:<12} {len(data):>5} {pct(data, .5):6.0f} {pct(data, .95):6.0f} {pct(data, .99):6.0f}"
                      f"   {pct(data, .5) - base50:+8.0f} {pct(data, .99) - base99:+8.0f}")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=5)
        gate.stop()
        redis.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
