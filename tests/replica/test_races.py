"""Nothing acknowledged is decided stale (issue 14 item 2): two gates (two ``open_app`` with their own
replicas) on one real Redis, two clients writing through the settling ledger, and a call checked at
both gates right after each acknowledgement: 0 allowed. A national list swapped under load: 0 wrong
decisions. Counts are scaled down here; ``python -m bench.replica_races`` runs the full ones.
Correctness only: a slow machine makes replicas stale more often, which sends calls to the round trip."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import structlog

from dncgate.app import App, open_app
from dncgate.consent.model import Action
from dncgate.gate import CheckRequest
from dncgate.model import Originator, Verdict
from dncgate.replica.store import ReplicaStore
from dncgate.settings import Settings, load
from tests.conftest import RedisServer
from tests.consent.conftest import event

log = structlog.get_logger("test")


def _settings(url: str, tmp_path: Path) -> Settings:
    return load(None, environ={
        "DNCGATE_STORE__BACKEND": "redis", "DNCGATE_STORE__URL": url, "DNCGATE_STORE__TIMEOUT_MS": "1000",
        "DNCGATE_REPLICA__ENABLED": "true", "DNCGATE_REPLICA__DIR": str(tmp_path / "replica"),
        "DNCGATE_REPLICA__MAX_LAG_MS": "30", "DNCGATE_REPLICA__POLL_MS": "5",
        "DNCGATE_TENANTS__ACME__REGION": "US", "DNCGATE_TENANTS__ACME__HOURS__ENABLED": "false",
        "DNCGATE_AUDIT__SPOOL_DIR": "",
    })


@pytest.fixture
async def gates(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[tuple[App, App]]:
    redis_server.flush()
    settings = _settings(redis_server.url, tmp_path)
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(open_app(settings, ledger=True, replica=True, metrics=True))
        second = await stack.enter_async_context(open_app(settings, ledger=True, replica=True))
        for app in (first, second):
            await _replica(app).follower.wait_ready()
        yield first, second


def _replica(app: App) -> ReplicaStore:
    assert isinstance(app.store, ReplicaStore)
    return app.store


async def _verdict(app: App, number: int) -> Verdict:
    request = CheckRequest(f"+{number}", door="test", tenant="acme", purpose="marketing",
                           originator=Originator(account="a1", entity="bank-1"))
    return (await app.gate.check(request, log)).decision.verdict


async def test_decline_and_revoke_then_call_at_two_gates(gates: tuple[App, App]) -> None:
    first, second = gates
    listed = [12015551000 + i for i in range(100)]
    await first.store.replace_list("national", listed)
    for number in listed:  # consent lets these through the national list until it is revoked
        await first.consent_ledger().append(event(Action.GRANT, f"+{number}", tenant="acme"))
    allowed_after_ack = 0

    async def client(writer: App, numbers: range, revoke: list[int]) -> None:
        nonlocal allowed_after_ack
        for number in numbers:  # a number with no records: decided from the replica until declined
            assert await _verdict(first, number) is Verdict.ALLOW
            assert await _verdict(second, number) is Verdict.ALLOW
            await writer.consent_ledger().append(event(Action.DECLINE, f"+{number}", tenant="acme",
                                                       categories=("*",)))
            for gate in (first, second):
                allowed_after_ack += await _verdict(gate, number) is Verdict.ALLOW
        for number in revoke:
            assert await _verdict(second, number) is Verdict.ALLOW
            await writer.consent_ledger().append(event(Action.REVOKE, f"+{number}", tenant="acme"))
            for gate in (first, second):
                allowed_after_ack += await _verdict(gate, number) is Verdict.ALLOW

    await asyncio.gather(client(first, range(12015560000, 12015560100), listed[:50]),
                         client(second, range(12015570000, 12015570100), listed[50:]))
    assert allowed_after_ack == 0
    assert _replica(first).answered["replica"] > 0  # the replica did decide calls: the races were real
    assert _replica(second).answered["replica"] > 0
    assert first.metrics is not None
    scraped = first.metrics.render().decode()
    assert f'dncgate_replica_answers_total{{how="replica"}} {_replica(first).answered["replica"]}.0' in scraped
    assert "dncgate_replica_age_seconds " in scraped


async def test_national_list_swapped_under_load_makes_no_wrong_decision(gates: tuple[App, App]) -> None:
    first, second = gates
    both = list(range(12015600000, 12015600000 + 20_000, 2))  # listed before and after the swap
    old_only = list(range(12015700000, 12015700000 + 10_000, 2))
    new_only = list(range(12015800000, 12015800000 + 10_000, 2))
    neither = [n + 1 for n in both[:5000]]
    await first.store.replace_list("national", both + old_only)
    for app in (first, second):
        await _wait_version(app)
    wrong = checked = 0
    done = asyncio.Event()

    async def load() -> None:
        nonlocal wrong, checked
        while not done.is_set():
            for i in range(200):
                for app in (first, second):
                    if await _verdict(app, both[(checked + i) % len(both)]) is not Verdict.REJECT:
                        wrong += 1
                    if await _verdict(app, neither[(checked + i) % len(neither)]) is not Verdict.ALLOW:
                        wrong += 1
            checked += 200

    loader = asyncio.create_task(load())
    await first.store.replace_list("national", both + new_only)
    for app in (first, second):
        await _wait_version(app)
    done.set()
    await loader
    for app in (first, second):
        assert await _verdict(app, old_only[7]) is Verdict.ALLOW
        assert await _verdict(app, new_only[7]) is Verdict.REJECT
    assert wrong == 0
    assert checked > 0
    assert _replica(first).answered["replica"] > 0


async def _wait_version(app: App) -> None:
    """Until this gate's replica holds the store's live national version."""
    replica = _replica(app)
    live = (await replica.inner.facts("acme", 1)).national_version
    for _ in range(10_000):
        if replica.follower.lists["national"].version == live and replica.follower.age() is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"replica never reached national version {live}")


async def test_suspension_then_call_at_two_gates(gates: tuple[App, App], redis_server: RedisServer) -> None:
    """Enforcement suspends an originator through the settling case store; on the acknowledgement no
    gate lets its marketing calls through (the replica reads standing every poll, or is too old)."""
    from datetime import timedelta

    from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
    from dncgate.enforcement.model import CaseAction
    from dncgate.enforcement.service import Enforcement, Policy
    from dncgate.replica.settle import SettlingCaseStore
    from dncgate.store.redis.cases import RedisCaseStore
    from tests.enforcement.conftest import Clock, alert

    first, second = gates
    await first.store.replace_list("national", [12015551000])  # a live national list: no list_missing
    for app in (first, second):
        await _wait_version(app)
    clock = Clock()
    cases = SettlingCaseStore(RedisCaseStore.connect(redis_server.url), settle=0.03)  # [replica] max_lag_ms
    service = Enforcement(cases, Policy(notice_period=timedelta(0)), tenants=["acme"], clock=clock)
    allowed_after_ack = 0
    try:
        for i in range(20):
            account = f"out-{i}"
            request = CheckRequest("+12015559000", door="test", tenant="acme", purpose="marketing",
                                   originator=Originator(account=account))
            for gate in (first, second):
                assert (await gate.gate.check(request, log)).decision.verdict is Verdict.ALLOW
            step = await service.on_alert(alert(f"a-{i}", originator=OriginatorKey("acme", OriginatorKind.ACCOUNT,
                                                                                     account)))
            assert step is not None
            await service.act("acme", step.case.case_id, CaseAction.SUSPEND, actor="api:ops", reason="test")
            clock.advance(seconds=1)
            await service.tick()  # the suspension is due: applied here, acknowledged on return
            facts = await _replica(first).inner.facts("acme", 12015559000, originators=(f"account:{account}",))
            assert facts.originator_suspended  # the store has it: the calls below must not pass
            for gate in (first, second):
                allowed_after_ack += (await gate.gate.check(request, log)).decision.verdict is Verdict.ALLOW
    finally:
        await service.drain()
        await cases.close()
    assert allowed_after_ack == 0
    assert _replica(first).answered["replica"] > 0
