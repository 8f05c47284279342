"""One clock for the whole app (issue 12): serve hands the clock it is given to ``open_app``, and the
gate, the early warning and enforcement all read that one. A clock set to a day the wall clock is not
on shows in every timestamp: the decision's, the alert's, the case's steps and the notice period's end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from dncgate.clock import Clock as AppClock
from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
from dncgate.enforcement.model import CaseAction, CaseState
from dncgate.gate import CheckRequest
from dncgate.model import Originator, Reason
from dncgate.service import Running
from dncgate.settings import Settings, load
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import serve_core_toml, serving
from tests.enforcement.conftest import Clock

LOG = structlog.get_logger("test")
AT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # a Monday noon long gone: no wall clock reads this
LISTED = [8613900000000 + i for i in range(0, 2000, 2)]
BLASTER = OriginatorKey("acme", OriginatorKind.ACCOUNT, "blaster")


def _settings(tmp_path: Path) -> Settings:
    path, book = tmp_path / "dncgate.toml", tmp_path / "early-warning.sqlite3"
    path.write_text(serve_core_toml(tmp_path) + f"""
[enforcement]
enabled = true
notice_period_s = 3600
auto_suspend = true
scheduler_interval_s = 3600
[early_warning]
enabled = true
path = "{book}"
[tenants.acme]
region = "CN"
[tenants.acme.hours]
enabled = false
""", encoding="utf-8")
    return load(path, environ={})


async def _prepare(settings: Settings, clock: AppClock) -> None:
    store = SqliteListStore(settings.store.path)
    try:
        await store.replace_list("national", LISTED)
        await store.set_sync_state("national", {"fresh_at": (clock() - timedelta(days=1)).isoformat()})
    finally:
        await store.close()


async def _call(running: Running, account: str, number: int) -> Reason:
    request = CheckRequest(f"+{number}", "test", tenant="acme", purpose="marketing",
                           originator=Originator(account=account))
    result = await running.gate.check(request, LOG)
    await asyncio.sleep(0)  # the observers run on the loop's next turn
    return result.decision.reason


async def _settle(running: Running) -> None:
    assert running.early_warning is not None
    assert running.enforcement is not None
    async with asyncio.timeout(30):
        await running.early_warning.drain()
        await running.enforcement.cases.drain()


async def test_serve_hands_its_one_clock_to_the_gate_the_early_warning_and_enforcement(tmp_path: Path) -> None:
    settings, clock = _settings(tmp_path), Clock(AT)
    await _prepare(settings, clock)
    async with serving(settings, clock=clock) as running:
        assert running.early_warning is not None
        assert running.enforcement is not None
        for i in range(40):  # random numbers of the block: half listed, refused
            clock.advance(seconds=3)
            await _call(running, "blaster", 8613900000000 + (i * 7919) % 2000)
        await _settle(running)
        alerts = [a for a, _ in await running.early_warning.store.alerts("acme")]
        assert alerts
        assert {a.originator for a in alerts} == {BLASTER}
        assert all(AT < a.raised_at <= clock.at for a in alerts)  # the call facts' time: the gate's clock
        case = await running.enforcement.cases.store.open_case(BLASTER)
        assert case is not None
        assert case.state is CaseState.NOTICED
        assert case.noticed_at is not None
        assert AT < case.opened_at <= case.noticed_at <= clock.at  # enforcement's own steps: the same clock
        assert case.suspend_at == case.noticed_at + timedelta(hours=1)  # the notice period runs on it too
        checkpointed = await running.early_warning.checkpoint()
        assert checkpointed == 1
        # idle is measured on the same clock: the wall's (years on) would forget the state just written
        assert len(await running.early_warning.store.windows()) == 1
        clock.advance(hours=1, seconds=1)
        (applied,) = await running.enforcement.cases.tick()
        assert applied.transition.action is CaseAction.SUSPEND
        assert applied.transition.at == clock.at
        assert await _call(running, "blaster", 8613900000001) is Reason.ORIGINATOR_SUSPENDED
        steps = [s async for s in running.enforcement.cases.store.transitions("acme", case.case_id)]
        assert all(AT < s.at <= clock.at for s in steps)
