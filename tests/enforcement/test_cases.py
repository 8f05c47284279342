"""Cases on both stores: alerts open them, the notice period holds a suspension back, the gate's
lookup sees the standing, an appeal reinstates, a restart neither loses nor repeats a step."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from dncgate.backoff import Backoff
from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind, Severity
from dncgate.enforcement.casefile import case_file, verify_case_file
from dncgate.enforcement.model import CaseAction, CaseState, Standing
from dncgate.enforcement.notices import WebhookNotifier
from dncgate.enforcement.service import Enforcement, Policy, UnknownCase
from dncgate.errors import CaseError
from dncgate.model import Restriction
from tests.enforcement.conftest import Clock, Receiver, Stores, alert

NUMBER = 8613800138000
OTHER = OriginatorKey("acme", OriginatorKind.ACCOUNT, "other")


async def _no_sleep(_: float) -> None:
    return None


def _service(stores: Stores, clock: Clock, url: str = "", **policy: object) -> Enforcement:
    notifier = WebhookNotifier(deadline=5.0, attempts=3, backoff=Backoff(initial=0.0), sleep=_no_sleep)
    settings = Policy(notice_period=timedelta(hours=24), webhook_url=url, provisioning_url=url)
    return Enforcement(stores.cases, replace(settings, **policy), tenants=["acme"],  # type: ignore[arg-type]
                       notifier=notifier, clock=clock)


async def _suspended(stores: Stores, key: str = "account:acme-out") -> bool:
    facts = await stores.lists.facts("acme", NUMBER, originators=(key,))
    return facts.originator_suspended


async def test_alert_notice_period_suspension_appeal_reinstatement(stores: Stores, receiver: Receiver) -> None:
    clock = Clock()
    service = _service(stores, clock, receiver.url)
    receiver.statuses = [500]  # the first attempt fails: retried, then delivered
    step = await service.on_alert(alert())
    assert step is not None
    assert step.case.state is CaseState.NOTICED
    await service.drain()
    case = step.case
    steps = [s async for s in stores.cases.transitions("acme", case.case_id)]
    assert [s.action for s in steps] == [CaseAction.OPEN, CaseAction.NOTICE, CaseAction.DELIVERY]
    assert steps[2].evidence["status"] == 200
    assert steps[2].evidence["attempts"] == 2
    assert receiver.bodies[-1]["kind"] == "notice"
    assert receiver.bodies[-1]["case"]["originator"] == "acme-out"

    scheduled = await service.act("acme", case.case_id, CaseAction.SUSPEND, actor="api:ops", reason="campaign")
    assert scheduled.transition.action is CaseAction.SCHEDULE_SUSPENSION
    assert scheduled.case.suspend_at == clock.at + timedelta(hours=24)
    assert await service.tick() == []
    assert not await _suspended(stores)

    clock.advance(hours=24)
    applied = await service.tick()
    assert [s.case.standing for s in applied] == [Standing.SUSPENDED]
    assert await _suspended(stores)
    assert not await _suspended(stores, "account:other")
    await service.drain()
    assert receiver.bodies[-1]["kind"] == "stop_new_numbers"

    appealed = await service.act("acme", case.case_id, CaseAction.APPEAL, actor="api:acme", reason="consents held")
    assert appealed.case.state is CaseState.APPEALED
    assert await _suspended(stores)
    done = await service.act("acme", case.case_id, CaseAction.REINSTATE, actor="api:ops", reason="consents shown")
    assert done.case.standing is Standing.CLEAR
    assert not await _suspended(stores)
    await service.drain()  # the provisioning webhook's "resume" and its delivery record
    closed = await service.act("acme", case.case_id, CaseAction.CLOSE, actor="api:ops", reason="done")
    with pytest.raises(CaseError, match="closed"):
        await service.act("acme", case.case_id, CaseAction.APPEAL, actor="api:acme", reason="again")
    await service.drain()
    final = await service.case("acme", case.case_id)
    document = await case_file(stores.cases, final)
    assert document["chain"]["verified"] is True
    assert verify_case_file(document) == final.seq == closed.case.seq
    assert document["transitions"][-2]["evidence"]["kind"] == "resume_new_numbers"


async def test_suspension_before_the_notice_period_needs_urgency_and_a_reason(stores: Stores) -> None:
    service = _service(stores, Clock())
    opened = await service.on_alert(alert(severity=Severity.WARNING))
    assert opened is not None
    assert opened.case.state is CaseState.OPEN
    case_id = opened.case.case_id
    with pytest.raises(CaseError, match="suspend needs one of"):
        await service.act("acme", case_id, CaseAction.SUSPEND, actor="cli:ops", reason="x")
    with pytest.raises(CaseError, match="written reason"):
        await service.act("acme", case_id, CaseAction.SUSPEND, actor="cli:ops", reason=" ", urgent=True)
    step = await service.act("acme", case_id, CaseAction.SUSPEND, actor="cli:ops", reason="fraud in progress",
                             urgent=True)
    assert step.case.standing is Standing.SUSPENDED
    assert step.case.noticed_at is not None
    assert await _suspended(stores)
    with pytest.raises(CaseError, match="close needs one of"):
        await service.act("acme", case_id, CaseAction.CLOSE, actor="cli:ops", reason="x")


async def test_a_restart_loses_no_step_and_applies_none_twice(stores: Stores) -> None:
    clock = Clock()
    service = _service(stores, clock)
    first = await service.on_alert(alert("a-7"))
    assert first is not None
    restarted = Enforcement(stores.reopen(), service.policy, tenants=["acme"], clock=clock)
    again = await restarted.on_alert(alert("a-7"))  # the analyser replays the alert it had not acknowledged
    assert again is not None
    assert again.replayed
    case = await restarted.case("acme", first.case.case_id)
    assert case.seq == first.case.seq
    assert case.state is CaseState.NOTICED
    one = await restarted.act("acme", case.case_id, CaseAction.RESTRICT, actor="api:ops", reason="r", key="req-1")
    two = await restarted.act("acme", case.case_id, CaseAction.RESTRICT, actor="api:ops", reason="r", key="req-1")
    assert two.replayed
    assert two.transition.hash == one.transition.hash
    assert (await restarted.case("acme", case.case_id)).seq == one.case.seq
    facts = await stores.lists.facts("acme", NUMBER, originators=("caller_id:1", "account:acme-out"))
    assert facts.originator_restriction == Restriction(10, 2, "account:acme-out")
    assert not facts.originator_suspended


async def test_two_writers_on_one_case_both_land_in_the_chain(stores: Stores) -> None:
    clock = Clock()
    one, two = _service(stores, clock), Enforcement(stores.reopen(), Policy(), tenants=["acme"], clock=clock)
    opened = await one.on_alert(alert(severity=Severity.WARNING))
    assert opened is not None
    stale = opened.case
    await one.act("acme", stale.case_id, CaseAction.NOTE, actor="cli:a", reason="first")
    await two._step(stale, CaseAction.NOTE, "cli:b", "second", "k-2")  # from a stale head: reloaded, redone
    steps = [s async for s in stores.cases.transitions("acme", stale.case_id)]
    assert [s.reason for s in steps[1:]] == ["first", "second"]
    assert [s.seq for s in steps] == [1, 2, 3]


async def test_report_only_alerts_and_unknown_things(stores: Stores) -> None:
    service = _service(stores, Clock())
    assert await service.on_alert(alert(report_only=True)) is None
    assert await service.on_alert(alert(originator=OriginatorKey("nobody", OriginatorKind.ACCOUNT, "x"))) is None
    assert await stores.cases.cases("acme") == []
    with pytest.raises(UnknownCase):
        await service.act("acme", "case-missing", CaseAction.WARN, actor="cli:ops", reason="x")
    opened = await service.on_alert(alert(severity=Severity.WARNING))
    assert opened is not None
    with pytest.raises(CaseError, match="recorded by dncgate"):
        await service.act("acme", opened.case.case_id, CaseAction.DELIVERY, actor="cli:ops", reason="x")
    with pytest.raises(CaseError, match="needs one of"):
        await service.act("acme", opened.case.case_id, CaseAction.REINSTATE, actor="cli:ops", reason="x")
    update = await service.on_alert(alert("a-2", severity=Severity.WARNING))
    assert update is not None
    assert update.case.case_id == opened.case.case_id
    assert update.case.alerts == 2


async def test_a_tampered_case_file_fails_verification(stores: Stores) -> None:
    service = _service(stores, Clock())
    opened = await service.on_alert(alert())
    assert opened is not None
    document = await case_file(stores.cases, await service.case("acme", opened.case.case_id))
    assert document["chain"]["verified"] is True
    document["transitions"][0]["reason"] = "nothing happened"
    with pytest.raises(CaseError, match="does not match"):
        verify_case_file(document)
    del document["transitions"][0]
    with pytest.raises(CaseError, match="expected seq 1"):
        verify_case_file(document)


async def test_garbage_standing_fails_the_lookup_closed(stores: Stores) -> None:
    from dncgate.store.errors import StoreCorrupt

    if stores.kind == "sqlite":
        import sqlite3

        from dncgate.store.sqlite.cases import SqliteCaseStore

        assert isinstance(stores.cases, SqliteCaseStore)
        await stores.cases.cases("acme")  # creates the tables
        with sqlite3.connect(stores.cases.path) as conn:
            conn.execute("INSERT INTO originator_standing VALUES ('acme', 'account:x', 'zz', 'c')")
    else:
        from redis import Redis

        from tests.conftest import RedisServer  # noqa: F401 -- the fixture's server

        stores_url = stores.lists._settings.url
        Redis.from_url(stores_url).hset("dnc:{e:acme}:standing", "account:x", "zz")
    with pytest.raises(StoreCorrupt, match="standing"):
        await stores.lists.facts("acme", NUMBER, originators=("account:x",))
