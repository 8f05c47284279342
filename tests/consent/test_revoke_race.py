"""A revocation takes effect on the very next decision: decisions racing a revoke never allow after the ack."""

from __future__ import annotations

import asyncio

import structlog

from dncgate.audit import AuditSink
from dncgate.consent.model import Action
from dncgate.gate import CheckRequest, Gate
from dncgate.model import ListPolicy, Originator, Reason, TenantPolicy, Verdict
from dncgate.numbers import DialPlan
from tests.conftest import TEST_STORE_DEADLINE
from tests.consent.conftest import Backend, event

LOG = structlog.get_logger("test")
TENANT = TenantPolicy(name="acme", dial_plan=DialPlan(region="CN"), list_policy=ListPolicy.OPT_IN)
REQUEST = CheckRequest(dialled="13800138000", door="test", tenant="acme", purpose="marketing", category="finance",
                       originator=Originator(entity="bank-1"))


async def test_concurrent_decisions_racing_a_revoke(backend: Backend) -> None:
    """Ordered by events, not clocks (issue 11 item 20): the revoke starts once 10 decisions were
    made, and the loops stop once 10 more started after its ack; a decision is "after" when it
    started after the ack (one event loop: the flag is set the moment the append returns)."""
    await backend.ledger.append(event(Action.GRANT))
    audit = AuditSink(backend.store)
    audit.start()
    gate = Gate({"acme": TENANT}, backend.store, audit, store_deadline=TEST_STORE_DEADLINE)
    acked = asyncio.Event()
    ten_before, ten_after = asyncio.Event(), asyncio.Event()
    results: list[tuple[bool, Verdict, Reason]] = []

    async def decide_in_a_loop() -> None:
        for _ in range(100_000):  # bounded; ends long before, once ten decisions followed the ack
            if ten_after.is_set():
                return
            started_after_ack = acked.is_set()
            result = await gate.check(REQUEST, LOG)
            results.append((started_after_ack, result.decision.verdict, result.decision.reason))
            if len(results) >= 10:
                ten_before.set()
            if sum(after for after, _, _ in results) >= 10:
                ten_after.set()

    async def revoke() -> None:
        await ten_before.wait()
        await backend.ledger.append(event(Action.REVOKE))
        acked.set()

    try:
        await asyncio.wait_for(asyncio.gather(decide_in_a_loop(), decide_in_a_loop(), revoke()), timeout=60)
    finally:
        await audit.close()
    before = [r for r in results if not r[0]]
    after = [r for r in results if r[0]]
    assert len(before) >= 10
    assert len(after) >= 10, "the race needs decisions on both sides of the ack"
    assert {reason for _, _, reason in before} <= {Reason.ALLOWED_CONSENT, Reason.CONSENT_REVOKED}
    assert (Verdict.ALLOW, Reason.ALLOWED_CONSENT) in {(v, r) for _, v, r in before}
    assert {(v, r) for _, v, r in after} == {(Verdict.REJECT, Reason.CONSENT_REVOKED)}
