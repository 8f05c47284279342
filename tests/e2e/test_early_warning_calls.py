"""Early warning end to end through the real Asterisk 22: a SIPp campaign of short calls to listed
numbers from one account raises an alert, the case sends its notice to a webhook (recorded), the
suspension waits for the (short) notice period, then that account's next marketing call is refused
with ``originator_suspended`` and the tenant's configured SIP code while another account's calls go
through; an appeal reinstates it.

The gate runs in this process (``serving``: the same ``serve()`` the command runs), so the test
reads its case store directly. The thresholds are the test config's (``refused`` after 5 attempts),
the notice period 5 s; waits are bounded (``asyncio.wait_for``), nothing asserts how fast they were.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
from dncgate.enforcement.model import CaseAction, CaseState, Standing
from dncgate.service import Running
from dncgate.settings import load
from tests.conftest import RedisServer, serving
from tests.e2e.gate_process import CLEAR, LISTED, STANDARD_LISTS, gate_config, load_lists
from tests.e2e.lab import AsteriskLab, CallResult
from tests.enforcement.conftest import Receiver, receiver  # noqa: F401 -- the webhook receiver fixture

pytestmark = pytest.mark.e2e
BLASTER = OriginatorKey("acme", OriginatorKind.ACCOUNT, "blaster")
NOTICE_PERIOD_S = 5


def _config(redis_url: str, lab: AsteriskLab, tmp_path: Path, hook: str) -> str:
    return gate_config(redis_url, agi_port=0, http_port=0, spool_dir=tmp_path / "spool") + f"""
[tenants.acme.enforcement]
analytics_sip_code = 608

[ami]
enabled = true
port = {lab.ami_port}
username = "{lab.ami_user}"
secret = "{lab.ami_secret}"

[enforcement]
enabled = true
notice_period_s = {NOTICE_PERIOD_S}
auto_notice = true
auto_suspend = true
scheduler_interval_s = 0.2

[enforcement.notice]
webhook_url = "{hook}"

[early_warning]
enabled = true
path = "{tmp_path / 'early-warning.sqlite3'}"
checkpoint_interval_s = 1

[early_warning.tenants.acme.rules.refused]
min_attempts = 5
"""


async def _call(lab: AsteriskLab, number: str, account: str) -> CallResult:
    return await asyncio.to_thread(lab.place_call, number, tenant="acme", purpose="marketing",
                                   variables={"LAB_ACCOUNT": account}, hold_ms=200)


async def _until(predicate: Callable[[], Awaitable[bool]], what: str, bound: float = 60.0) -> None:
    """Poll ``predicate`` (the store is another process's or thread's: no event to wait on), bounded."""
    for _ in range(int(bound / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {bound:.0f} s: {what}")


async def test_a_campaign_is_alerted_noticed_suspended_and_reinstated_on_appeal(
        lab: AsteriskLab, redis_server: RedisServer, tmp_path: Path, receiver: Receiver) -> None:  # noqa: F811
    await asyncio.to_thread(load_lists, redis_server.url, STANDARD_LISTS)
    path = tmp_path / "dncgate.toml"
    path.write_text(_config(redis_server.url, lab, tmp_path, receiver.url), encoding="utf-8")
    async with serving(load(path, environ={})) as running:
        assert running.agi_port is not None
        assert running.enforcement is not None
        assert running.early_warning is not None
        await asyncio.to_thread(lab.use_gate, running.agi_port)
        cases = running.enforcement.cases

        for _ in range(5):  # short calls to a listed number: each refused (607, acme's list code)
            assert (await _call(lab, LISTED, "blaster")).final_code == 607

        async def suspended() -> bool:
            found = await cases.store.open_case(BLASTER)
            return found is not None and found.standing is Standing.SUSPENDED
        await _until(suspended, "an alert, a case, its notice and the suspension after the notice period")

        alerts = await running.early_warning.store.alerts("acme")
        refused = [a for a, _ in alerts if a.rule == "refused" and a.originator == BLASTER]
        assert refused, alerts
        assert refused[0].figures["refused_share"] == 1.0
        assert len(refused[0].sample_decisions) >= 1
        case = await cases.store.open_case(BLASTER)
        assert case is not None
        steps = {s.action: s async for s in cases.store.transitions("acme", case.case_id)}
        assert steps[CaseAction.OPEN].evidence["alert_id"] == refused[0].alert_id
        notice, schedule, suspend = (steps[CaseAction.NOTICE], steps[CaseAction.SCHEDULE_SUSPENSION],
                                     steps[CaseAction.SUSPEND])
        # the suspension waited for the notice period: scheduled for its end, applied by the scheduler after it
        assert schedule.effective_at == notice.at + timedelta(seconds=NOTICE_PERIOD_S)
        assert (suspend.actor, suspend.at >= schedule.effective_at) == ("scheduler", True)
        assert not suspend.urgent
        await asyncio.wait_for(receiver.got.wait(), 30)
        assert (receiver.bodies[0]["kind"], receiver.bodies[0]["case"]["originator"]) == ("notice", "blaster")

        async def delivered() -> bool:
            return any([s.action is CaseAction.DELIVERY and s.evidence.get("kind") == "notice"
                        async for s in cases.store.transitions("acme", case.case_id)])
        await _until(delivered, "the notice's delivery recorded in the case")

        blocked = await _call(lab, CLEAR, "blaster")
        assert blocked.final_code == 608, blocked  # acme's analytics_sip_code
        assert not blocked.reached_callee
        other = await _call(lab, CLEAR, "people")
        assert other.final_code == 200, other
        await _last_reason(running, "blaster", "originator_suspended")

        await cases.act("acme", case.case_id, CaseAction.APPEAL, actor="test", reason="we hold consent")
        step = await cases.act("acme", case.case_id, CaseAction.REINSTATE, actor="test", reason="consent shown")
        assert (step.case.state, step.case.standing) == (CaseState.REINSTATED, Standing.CLEAR)
        again = await _call(lab, CLEAR, "blaster")
        assert again.final_code == 200, again


async def _last_reason(running: Running, account: str, reason: str) -> None:
    """The audit's newest decision for ``account`` has ``reason`` (the audit sink writes on its own turn)."""
    async def found() -> bool:
        records = await running.gate.store.audit_tail(20)
        mine = [r for r in records if r.account == account]
        return bool(mine) and mine[-1].reason == reason
    await _until(found, f"the audit's {reason} decision for {account}")
    records = await running.gate.store.audit_tail(20)
    print(json.dumps([r.as_dict() for r in records if r.account == account][-1]))
