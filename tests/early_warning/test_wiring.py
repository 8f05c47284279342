"""The early warning wired as serve wires it: gate decisions and call records in, alerts booked and
handed to enforcement (case, notice, scheduled suspension), the suspension enforced by the gate, a
restart that loses no case step and raises nothing twice, complaints as a signal and their deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from dncgate.analytics import EarlyWarning
from dncgate.audit import AuditSink
from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
from dncgate.enforcement.complaints import Step
from dncgate.enforcement.desk import EnforcementDesk, desk_of
from dncgate.enforcement.model import CaseState
from dncgate.events import CallEventStream, CallRecord
from dncgate.gate import CheckRequest, Gate
from dncgate.model import Originator, Reason, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.settings.early_warning import EarlyWarningSettings
from dncgate.settings.enforcement import EnforcementSettings
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.cases import SqliteCaseStore
from tests.enforcement.conftest import T0, Clock

TENANTS = {"acme": TenantPolicy("acme", DialPlan(region="CN"))}
LISTED = [8613900000000 + i for i in range(0, 2000, 2)]  # every other number of a block
LOG = structlog.get_logger("test")
NOON = T0 + timedelta(hours=9)  # 12:00 UTC: the night rule stays out of it
BLASTER = OriginatorKey("acme", OriginatorKind.ACCOUNT, "blaster")


@dataclass
class World:
    gate: Gate
    desk: EnforcementDesk
    watching: EarlyWarning
    stream: CallEventStream
    clock: Clock
    path: Path

    async def call(self, account: str, number: int, purpose: str = "marketing") -> Reason:
        result = await self.gate.check(CheckRequest(f"+{number}", "test", tenant="acme", purpose=purpose,
                                                    originator=Originator(account=account,
                                                                          caller_id=f"+86105{account[:3]}")), LOG)
        await asyncio.sleep(0)  # the observers run on the loop's next turn
        return result.decision.reason

    async def settle(self) -> None:
        """Until the alerts queued are delivered and their webhooks recorded."""
        await asyncio.sleep(0)
        await self.watching.drain()
        await self.desk.cases.drain()


async def open_world(tmp_path: Path, clock: Clock) -> tuple[World, list[object]]:
    path = tmp_path / "dncgate.sqlite3"
    store = SqliteListStore(path)
    await store.replace_list("national", LISTED)
    audit = AuditSink(store, linger=0.0)
    audit.start()
    gate = Gate(TENANTS, store, audit, clock=clock)
    cases = SqliteCaseStore(path)
    settings = EarlyWarningSettings(enabled=True, path=tmp_path / "ew.sqlite3")
    watching = await EarlyWarning.open(settings, TENANTS, default_tenant="acme", clock=clock)
    desk = desk_of(EnforcementSettings(enabled=True, notice_period=3600.0, auto_suspend=True), TENANTS, cases, store,
                   clock=clock, alerts=watching.store)
    stream = CallEventStream()
    watching.start(gate, stream.subscribe(), desk)
    return World(gate, desk, watching, stream, clock, path), [audit, cases, store]


async def close_world(built: World, closables: list[object]) -> None:
    """What serve does on the way out: the early warning's last checkpoint, the webhooks, the stores."""
    await built.watching.close(1.0)
    await built.desk.cases.drain()
    for closable in closables:
        await closable.close()  # type: ignore[attr-defined]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    built, closables = await open_world(tmp_path, Clock(NOON))
    try:
        yield built
    finally:
        await close_world(built, closables)


async def test_a_campaign_is_detected_noticed_and_suspended_after_the_notice_period(world: World) -> None:
    for i in range(40):  # random numbers of the block: half of them listed, refused
        world.clock.advance(seconds=3)
        await world.call("blaster", 8613900000000 + (i * 7919) % 2000)
        assert await world.call("people", 8613900000001 + 10 * i) is Reason.ALLOWED_CLEAR
    await world.settle()
    alerts = await world.watching.store.alerts("acme")
    assert {a.rule for a, _ in alerts} >= {"refused"}
    assert {a.originator for a, _ in alerts} == {BLASTER}
    refused = next(a for a, _ in alerts if a.rule == "refused")
    assert refused.figures["refused_share"] >= 0.3
    assert refused.sample_decisions
    case = await world.desk.cases.store.open_case(BLASTER)
    assert case is not None
    assert case.state is CaseState.NOTICED
    assert case.suspend_at == case.noticed_at + timedelta(hours=1)  # type: ignore[operator]
    assert await world.call("blaster", 8613900000001) is Reason.ALLOWED_CLEAR  # not before the notice period
    world.clock.advance(hours=1, seconds=1)
    await world.desk.cases.tick()
    assert await world.call("blaster", 8613900000001) is Reason.ORIGINATOR_SUSPENDED
    assert await world.call("people", 8613900000003) is Reason.ALLOWED_CLEAR


async def test_call_records_feed_the_answer_figures(world: World) -> None:
    for i in range(60):
        world.clock.advance(seconds=2)
        number = 8613900000001 + 2 * i  # not listed: allowed
        await world.call("shorty", number)
        world.stream.publish(CallRecord("asterisk", f"call-{i}", "+86105sho", "shorty", str(number),
                                        world.clock.at, world.clock.at, world.clock.at + timedelta(seconds=2), 2,
                                        16, "NORMAL_CLEARING"))
        await asyncio.sleep(0)
    await world.settle()
    short = [a for a, _ in await world.watching.store.alerts("acme") if a.rule == "short_calls"]
    assert len(short) == 1
    assert short[0].originator.value == "shorty"
    assert short[0].figures["answered_1h"] >= 40
    assert short[0].sample_calls


async def test_a_restart_mid_case_loses_no_step_and_raises_nothing_twice(tmp_path: Path) -> None:
    clock = Clock(NOON)
    world, closables = await open_world(tmp_path, clock)
    try:
        for i in range(40):
            clock.advance(seconds=3)
            await world.call("blaster", 8613900000000 + (i * 7919) % 2000)
        await world.settle()
        booked = [a.alert_id for a, _ in await world.watching.store.alerts("acme")]
        case = await world.desk.cases.store.open_case(BLASTER)
        assert case is not None
        steps_before = [s.id async for s in world.desk.cases.store.transitions("acme", case.case_id)]
    finally:
        await close_world(world, closables)  # the last checkpoint
    world, closables = await open_world(tmp_path, clock)
    try:
        assert world.watching.analyser.originators() == 1
        for i in range(40, 60):  # the campaign goes on: its levels were kept, no new alert
            clock.advance(seconds=3)
            await world.call("blaster", 8613900000000 + (i * 7919) % 2000)
        await world.settle()
        assert [a.alert_id for a, _ in await world.watching.store.alerts("acme")] == booked
        again = await world.desk.cases.store.open_case(BLASTER)
        assert again is not None
        assert again.case_id == case.case_id
        assert [s.id async for s in world.desk.cases.store.transitions("acme", case.case_id)] == steps_before
        clock.advance(hours=1, seconds=1)
        applied = await world.desk.cases.tick()
        assert len(applied) == 1
        assert await world.desk.cases.tick() == []  # applied once
        assert await world.call("blaster", 8613900000001) is Reason.ORIGINATOR_SUSPENDED
    finally:
        await close_world(world, closables)


async def test_complaints_count_and_their_deadlines_raise_one_alert(world: World) -> None:
    await world.call("blaster", 8613900000001)
    world.clock.advance(seconds=10)
    complaint, _ = await world.desk.complaints.file("acme", {
        "complainant": "+8613900000001", "originator_number": "+86105bla", "called_at": world.clock.at.isoformat(),
        "text": "again"}, actor="test")
    world.watching.analyser.flush(world.clock.at.timestamp() + 10)
    ((_, _, state),) = list(world.watching.analyser.states())
    assert state.day(2) == 1  # D_COMPLAINTS
    assert await world.watching.check_deadlines() == []  # days away
    forward = complaint.deadlines(world.desk.complaints.sla)[Step.FORWARD]
    world.clock.at = forward - timedelta(hours=1)  # within 24 h of the 3-working-day forwarding deadline
    raised = await world.watching.check_deadlines()
    assert [(a.rule, a.severity.value, a.extra["step"], a.report_only) for a in raised] == [
        ("complaint_sla", "warning", "forward", True)]
    assert raised[0].extra["complaint_id"] == complaint.id
    assert await world.watching.check_deadlines() == []  # booked once
    world.clock.at = forward + timedelta(hours=1)
    lapsed = await world.watching.check_deadlines()
    assert ("forward", "critical") in {(a.extra["step"], a.severity.value) for a in lapsed}
    assert await world.desk.cases.store.open_case(
        OriginatorKey("acme", OriginatorKind.CALLER_ID, "+86105bla")) is None  # no case from a deadline


async def test_a_record_nobody_decided_and_a_bad_tenant_are_counted(world: World) -> None:
    at = world.clock.at
    world.stream.publish(CallRecord("asterisk", "x", "+1", "", "123", at, None, at, 0, 21, "CALL_REJECTED"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert world.watching.analyser.unkeyed == 1  # no account: no originator
    await world.gate.check(CheckRequest("+8613900000001", "test", tenant="nobody"), LOG)
    await asyncio.sleep(0)
    assert world.watching.analyser.unkeyed == 2
