"""A revocation takes effect on the very next decision: decisions racing a revoke never allow after the ack."""

from __future__ import annotations

import asyncio
import time

import structlog

from dncgate.audit import AuditSink
from dncgate.consent.model import Action
from dncgate.gate import CheckRequest, Gate
from dncgate.model import ListPolicy, Originator, Reason, TenantPolicy, Verdict
from dncgate.numbers import DialPlan
from tests.consent.conftest import Backend, event

LOG = structlog.get_logger("test")
TENANT = TenantPolicy(name="acme", dial_plan=DialPlan(region="CN"), list_policy=ListPolicy.OPT_IN)
REQUEST = CheckRequest(dialled="13800138000", door="test", tenant="acme", purpose="marketing", category="finance",
                       originator=Originator(entity="bank-1"))


async def test_concurrent_decisions_racing_a_revoke(backend: Backend) -> None:
    await backend.ledger.append(event(Action.GRANT))
    audit = AuditSink(backend.store)
    audit.start()
    gate = Gate({"acme": TENANT}, backend.store, audit, store_deadline=2.0)
    acked_at: list[float] = []
    results: list[tuple[float, Verdict, Reason]] = []
    stop = asyncio.Event()

    async def decide_in_a_loop() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            result = await gate.check(REQUEST, LOG)
            results.append((started, result.decision.verdict, result.decision.reason))

    async def revoke() -> None:
        await asyncio.sleep(0.05)
        await backend.ledger.append(event(Action.REVOKE))
        acked_at.append(time.perf_counter())
        await asyncio.sleep(0.05)
        stop.set()

    try:
        await asyncio.wait_for(asyncio.gather(decide_in_a_loop(), decide_in_a_loop(), revoke()), timeout=10)
    finally:
        await audit.close()
    before = [r for r in results if r[0] < acked_at[0]]
    after = [r for r in results if r[0] >= acked_at[0]]
    assert len(before) > 5
    assert len(after) > 5, "the race needs decisions on both sides of the ack"
    assert {reason for _, _, reason in before} <= {Reason.ALLOWED_CONSENT, Reason.CONSENT_REVOKED}
    assert (Verdict.ALLOW, Reason.ALLOWED_CONSENT) in {(v, r) for _, v, r in before}
    assert {(v, r) for _, v, r in after} == {(Verdict.REJECT, Reason.CONSENT_REVOKED)}
