"""Issue 14 item 2 at full size: two gates (two ``open_app`` with their own replicas) on one redis-server.

    .venv/bin/python -m bench.replica_races [--races 10000] [--swap-size 10000000]

1. ``--races`` decline-then-call races from two clients (half each, concurrently): each client checks
   a number with no records at both gates (allowed, from the replica), declines it through its
   gate's settling ledger, and on the acknowledgement checks it at both gates again. Counts calls
   allowed after the acknowledgement (must be 0) and how the gates answered.
2. A national list of ``--swap-size`` numbers swapped for another (half the numbers kept) while both
   gates check numbers listed in both (must reject) and numbers in neither (must allow). Counts wrong
   decisions (must be 0), checks made during the swap and the swap's duration.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import structlog

from bench.store_redis import start_redis
from dncgate.app import App, open_app
from dncgate.consent.model import Action, Channel, Evidence, LedgerEvent
from dncgate.gate import CheckRequest
from dncgate.model import FAILURE_REASONS, Decision, Originator, Verdict
from dncgate.replica.store import ReplicaStore
from dncgate.settings import Settings, load

log = structlog.get_logger("bench")
EVIDENCE = Evidence(Channel.WEB, datetime(2026, 1, 5, tzinfo=UTC), "203.0.113.7", "template:web-optin-v3", "crm-7")


def _settings(url: str, workdir: Path) -> Settings:
    return load(None, environ={
        "DNCGATE_STORE__BACKEND": "redis", "DNCGATE_STORE__URL": url, "DNCGATE_STORE__TIMEOUT_MS": "2000",
        "DNCGATE_REPLICA__ENABLED": "true", "DNCGATE_REPLICA__DIR": str(workdir / "replica"),
        "DNCGATE_REPLICA__MAX_LAG_MS": "50", "DNCGATE_REPLICA__POLL_MS": "10",
        "DNCGATE_TENANTS__ACME__REGION": "US", "DNCGATE_TENANTS__ACME__HOURS__ENABLED": "false",
        "DNCGATE_TENANTS__CN__REGION": "CN", "DNCGATE_TENANTS__CN__HOURS__ENABLED": "false",
        "DNCGATE_AUDIT__SPOOL_DIR": "",
    })


def _replica(app: App) -> ReplicaStore:
    assert isinstance(app.store, ReplicaStore)
    return app.store


async def _decision(app: App, number: int, tenant: str = "acme") -> Decision:
    request = CheckRequest(f"+{number}", door="bench", tenant=tenant, purpose="marketing",
                           originator=Originator(account="a1", entity="bank-1"))
    return (await app.gate.check(request, log)).decision


async def _verdict(app: App, number: int, tenant: str = "acme") -> Verdict:
    return (await _decision(app, number, tenant)).verdict


async def races(gates: tuple[App, App], count: int) -> None:
    allowed_after_ack = 0
    allowed_before = 0
    refused_before: Counter[str] = Counter()  # why a call before the decline was not allowed (a failure?)

    async def client(writer: App, start: int) -> None:
        nonlocal allowed_after_ack, allowed_before
        for number in range(start, start + count // 2):
            for gate in gates:
                decision = await _decision(gate, number)
                allowed_before += decision.verdict is Verdict.ALLOW
                if decision.verdict is not Verdict.ALLOW:
                    refused_before[f"{decision.reason}: {decision.detail}"[:120]] += 1
            await writer.consent_ledger().append(LedgerEvent(tenant="acme", action=Action.DECLINE, callee=f"+{number}",
                                                             categories=("*",), evidence=EVIDENCE))
            for gate in gates:
                allowed_after_ack += await _verdict(gate, number) is Verdict.ALLOW

    started = time.perf_counter()
    await asyncio.gather(client(gates[0], 12015560000), client(gates[1], 12025560000))
    print(f"{count:,} decline-then-call races, two clients, two gates, {time.perf_counter() - started:.1f} s: "
          f"allowed before the decline {allowed_before:,} of {2 * count:,}; allowed after the acknowledgement "
          f"{allowed_after_ack}")
    for reason, times in refused_before.most_common(5):
        print(f"  not allowed before the decline, {times}x: {reason}")
    for i, gate in enumerate(gates):
        print(f"  gate {i + 1} answered {_replica(gate).answered}")


async def swap(gates: tuple[App, App], size: int) -> None:
    # CN mobiles (tenant "cn"): 10**8 valid numbers behind each of 138, 139, 150, 158.
    both = list(range(8613800000000, 8613800000000 + size // 2))  # half the old list, kept in the new one
    old_only = list(range(8613900000000, 8613900000000 + size // 2))
    new_only = list(range(8615000000000, 8615000000000 + size // 2))
    neither = list(range(8615800000000, 8615800000000 + 100_000))
    started = time.perf_counter()
    await gates[0].store.replace_list("national", both + old_only)
    for gate in gates:
        await _wait_version(gate)
    print(f"\nnational list of {size:,} loaded, both replicas current, in {time.perf_counter() - started:.1f} s")
    wrong = failed_closed = checked = 0
    examples: list[str] = []
    done = asyncio.Event()

    async def load() -> None:
        nonlocal wrong, failed_closed, checked
        while not done.is_set():
            for gate in gates:
                for number, expected in ((both[checked % len(both)], Verdict.REJECT),
                                         (neither[checked % len(neither)], Verdict.ALLOW)):
                    decision = await _decision(gate, number, "cn")
                    if decision.verdict is not expected:
                        examples.append(f"+{number} {decision.verdict} {decision.reason}: {decision.detail}"[:160])
                    if decision.verdict is not expected and decision.reason in FAILURE_REASONS:
                        failed_closed += 1  # the store did not answer in time: rejected, as without a replica
                    elif decision.verdict is not expected:
                        wrong += 1
            checked += 1

    loader = asyncio.create_task(load())
    started = time.perf_counter()
    await gates[0].store.replace_list("national", both + new_only)
    swapped = time.perf_counter() - started
    for gate in gates:
        await _wait_version(gate)
    followed = time.perf_counter() - started
    done.set()
    await loader
    print(f"swapped for another {size:,} in {swapped:.1f} s, both replicas on it {followed:.1f} s after the start; "
          f"{4 * checked:,} checks during it, wrong decisions {wrong}, failed closed (store too slow) {failed_closed}")
    for i, gate in enumerate(gates):
        print(f"  gate {i + 1} answered {_replica(gate).answered}")
    for example in examples[:5]:
        print(f"  failed or wrong: {example}")


async def _wait_version(app: App) -> None:
    replica = _replica(app)
    live = (await replica.inner.facts("acme", 1)).national_version
    while replica.follower.lists["national"].version != live or replica.follower.age() is None:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--races", type=int, default=10_000)
    parser.add_argument("--swap-size", type=int, default=10_000_000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        process, url = start_redis(workdir)
        try:
            settings = _settings(url, workdir)
            async with open_app(settings, ledger=True, replica=True) as first, \
                    open_app(settings, ledger=True, replica=True) as second:
                for gate in (first, second):
                    await _replica(gate).follower.wait_ready()
                if args.races:
                    await first.store.replace_list("national", [12015551000])  # live: not list_missing
                    for gate in (first, second):
                        await _wait_version(gate)
                    await races((first, second), args.races)
                await swap((first, second), args.swap_size)
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
