"""Hostile peers against ``dncgate serve`` (issue 11 items 9-18): does every other door keep
answering, and what do the floods cost the gate in memory and descriptors?

    .venv/bin/python bench/hostile.py [--open-files 320] [--rounds 5]

One serve (FastAGI, the event socket and HTTP on loopback, Redis store, the caps of
tests/hostile: AGI 64, ESL 32, HTTP 64 connections; open-file limit ``--open-files``). First a
no-flood baseline, then each flood in turn; during each, ``--rounds`` probes of every door (an
AGI check and an ESL call of a listed number, expecting 607; ``/healthz``). Printed per phase, on
one table: how many probes each door answered as documented, serve's peak RSS and peak open
descriptors (sampled from /proc every 10 ms), and the warning lines it logged. Numbers, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import RedisServer, free_port  # noqa: E402
from tests.e2e.gate_process import STANDARD_LISTS, GateProcess, load_lists  # noqa: E402
from tests.hostile import peers  # noqa: E402

MB = 1 << 20


class Sampler:
    """Peak RSS and open descriptors of ``pid``, sampled on a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss = 0
        self.fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self.rss = max(self.rss, peers.memory_of(self.pid)[0])
                self.fds = max(self.fds, peers.descriptors_of(self.pid))
            except (OSError, KeyError):
                return

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Phase:
    name: str
    answered: dict[str, int] = field(default_factory=lambda: {"agi": 0, "esl": 0, "http": 0})
    rounds: int = 0
    rss: int = 0
    fds: int = 0
    warnings: int = 0
    note: str = ""


Flood = Callable[[asyncio.Event], Awaitable[str]]  # given the event set when the phase's probes are done


@dataclass
class Bench:
    gate: GateProcess
    esl_port: int
    rounds: int
    flood_size: int  # idle connections of an idle flood: more than serve has descriptors

    @property
    def pid(self) -> int:
        assert self.gate.process is not None
        return self.gate.process.pid

    def warnings(self) -> int:
        return sum(1 for e in self.gate.log_events() if e.get("level") in ("warning", "error"))

    async def probe(self, phase: Phase) -> None:
        for _ in range(self.rounds):
            answers = await self.doors()
            phase.rounds += 1
            for door in ("agi", "esl", "http"):
                phase.answered[door] += int(getattr(answers, door))

    async def doors(self) -> peers.Answers:
        return await peers.doors_answer(self.gate.agi_port, self.esl_port, self.gate.http_port)

    async def run(self, name: str, flood: Flood | None) -> Phase:
        """Probe while ``flood`` runs (it returns a note); then wait until every door answers again."""
        phase = Phase(name)
        before = self.warnings()
        probed = asyncio.Event()

        async def probing() -> None:
            try:
                await self.probe(phase)
            finally:
                probed.set()

        with Sampler(self.pid) as sampler:
            if flood is None:
                await probing()
            else:
                phase.note, _ = await asyncio.gather(flood(probed), probing())
        phase.rss, phase.fds, phase.warnings = sampler.rss, sampler.fds, self.warnings() - before
        for _ in range(120):  # the next phase starts on a gate that answers everywhere
            if (await self.doors()).all:
                break
            await asyncio.sleep(0.5)
        return phase


def idle_flood(port: int, count: int) -> Flood:
    async def flood(probed: asyncio.Event) -> str:
        sockets = peers.open_idle(port, count)  # opened before the first probe starts
        try:
            await probed.wait()  # held while the phase's probes run
        finally:
            peers.close_all(sockets)
        return f"{count} idle connections"

    return flood


def floods(bench: Bench) -> list[tuple[str, Flood]]:
    gate, esl, over = bench.gate, bench.esl_port, bench.flood_size

    async def oversize(_probed: asyncio.Event) -> str:
        statuses = set()
        for _ in range(10):
            for request in peers.OVERSIZE_REQUESTS.values():
                statuses.add((await asyncio.to_thread(peers.raw_http, gate.http_port, request))[0])
        return f"30 oversize requests, status {sorted(statuses)}"

    async def digits(_probed: asyncio.Event) -> str:
        for _ in range(50):
            await peers.agi_digit_overflow(gate.agi_port)
        return "50 GET VARIABLE replies of 5,000 digits"

    def events(count: int, body: int, sessions: int) -> Flood:
        async def flood(_probed: asyncio.Event) -> str:
            for _ in range(sessions):
                await peers.esl_event_flood(esl, count, body)
            return f"{sessions} calls x {count} events x {body // 1024} KB"

        return flood

    async def languages(_probed: asyncio.Event) -> str:
        for _ in range(25):
            await peers.agi_check(gate.agi_port, peers.LISTED, "tenant=acme&language=../../../../tmp/x")
            await peers.esl_call(esl, peers.LISTED, dncgate_language="${system id}")
        return "50 calls with an injected language"

    async def tenants(_probed: asyncio.Event) -> str:
        await peers.unknown_tenants(gate.agi_port, 200)
        _, metrics = await peers.http_get(gate.http_port, "/metrics")
        return f"200 unknown tenants -> labels {sorted(peers.tenant_labels(metrics))}"

    async def probes(_probed: asyncio.Event) -> str:
        for port in (gate.agi_port, esl, gate.http_port):
            await peers.connect_close(port, 300)
        return "300 connect-close probes a door"

    return [
        ("idle HTTP flood", idle_flood(gate.http_port, over)),
        ("idle AGI flood", idle_flood(gate.agi_port, over)),
        ("idle ESL flood", idle_flood(esl, over)),
        ("oversize HTTP", oversize),
        ("AGI digit overflow", digits),
        ("ESL events 512 KB", events(40, 512 * 1024, 4)),
        ("ESL events 4 MB", events(60, 4 * MB, 1)),
        ("language injection", languages),
        ("unknown tenants", tenants),
        ("connect-close", probes),
    ]


def print_table(phases: list[Phase]) -> None:
    base = phases[0]
    print(f"{'phase':<20} {'agi':>6} {'esl':>6} {'http':>6} {'peak RSS MB':>12} {'peak fds':>9} {'warnings':>9}  note")
    for p in phases:
        rss = f"{p.rss / MB:.0f}" if p is base else f"{p.rss / MB:.0f} ({(p.rss - base.rss) / MB:+.0f})"
        fds = f"{p.fds}" if p is base else f"{p.fds} ({p.fds - base.fds:+d})"
        answered = [f"{p.answered[d]}/{p.rounds}" for d in ("agi", "esl", "http")]
        print(f"{p.name:<20} {answered[0]:>6} {answered[1]:>6} {answered[2]:>6} {rss:>12} {fds:>9} "
              f"{p.warnings:>9}  {p.note}")


async def main_async(bench: Bench) -> list[Phase]:
    phases = [await bench.run("no flood (baseline)", None)]
    for name, flood in floods(bench):
        phases.append(await bench.run(name, flood))
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open-files", type=int, default=320, help="serve's RLIMIT_NOFILE (default 320)")
    parser.add_argument("--rounds", type=int, default=5, help="probes of every door per phase (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dncgate-bench-hostile-") as tmp:
        work = Path(tmp)
        redis = RedisServer("127.0.0.1", free_port(), work)
        redis.start()
        try:
            load_lists(redis.url, STANDARD_LISTS)
            gate, esl_port = peers.hostile_gate(work / "gate", redis.url, open_files=args.open_files)
            gate.start()
            try:
                bench = Bench(gate, esl_port, args.rounds, flood_size=args.open_files + 80)
                phases = asyncio.run(main_async(bench))
            finally:
                gate.stop()
        finally:
            redis.stop()
    print(f"serve: open-file limit {args.open_files}; caps AGI 64, ESL 32, HTTP 64 connections; "
          f"{args.rounds} probes of each door per phase (answered as documented / probes)")
    print_table(phases)


if __name__ == "__main__":
    main()
