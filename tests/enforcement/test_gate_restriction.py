"""The gate enforces a restriction from the next call: marketing calls over the per-minute cap are
refused ``originator_restricted`` (603 by default) inside the same store round trip; service calls
and other accounts are not counted; the minute slides (no reset on a boundary)."""

from __future__ import annotations

from pathlib import Path

import structlog

from dncgate.audit import AuditSink
from dncgate.enforcement.limits import RestrictionCounter
from dncgate.gate import CheckRequest, Gate
from dncgate.model import Originator, Reason, Restriction, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import TEST_STORE_DEADLINE
from tests.enforcement.standing import write_standing

LOG = structlog.get_logger("test")


async def test_marketing_over_the_cap_is_refused_and_service_calls_pass(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite3"
    await write_standing(path, "acme", "account:blasts", "r:2:0")
    store = SqliteListStore(path)
    await store.replace_list("national", [12015550123])  # the tenant needs a national list
    audit = AuditSink(store)
    audit.start()
    gate = Gate({"acme": TenantPolicy(name="acme", dial_plan=DialPlan(region="US"))}, store, audit,
                store_deadline=TEST_STORE_DEADLINE, default_tenant="acme")
    try:
        def call(account: str, purpose: str = "marketing") -> CheckRequest:
            return CheckRequest("2015550199", "test", purpose=purpose, originator=Originator(account=account))

        reasons = [(await gate.check(call("blasts"), LOG)).decision for _ in range(3)]
        assert [d.reason for d in reasons] == [Reason.ALLOWED_CLEAR, Reason.ALLOWED_CLEAR, Reason.ORIGINATOR_RESTRICTED]
        assert reasons[2].sip_code == 603
        assert (await gate.check(call("blasts", "service"), LOG)).decision.reason is Reason.ALLOWED_SERVICE
        assert (await gate.check(call("people"), LOG)).decision.reason is Reason.ALLOWED_CLEAR
    finally:
        await audit.close()
        await store.close()


def test_the_minute_slides_and_calls_in_progress_are_released() -> None:
    counter = RestrictionCounter(max_originators=2)
    caps = Restriction(per_minute=2, concurrent=1, originator="account:a")
    assert counter.over(caps, 0.0) is None
    counter.admit(caps, 0.0)
    assert counter.over(caps, 1.0) == "1 calls in progress, cap 1"
    counter.release("account:a")
    counter.admit(caps, 30.0)
    counter.release("account:a")
    assert counter.over(caps, 59.0) == "2 calls in the last minute, cap 2"  # 0 s and 30 s: still in the window
    assert counter.over(caps, 60.5) is None  # the first slid out: no reset at a boundary
    for key in ("account:b", "account:c"):
        counter.admit(Restriction(1, 1, key), 61.0)
    assert len(counter) == 2  # bounded: the least recently used is dropped
