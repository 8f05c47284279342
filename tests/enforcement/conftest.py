"""Fixtures for enforcement: a case store and a list store on the same backend (both backends),
an injected clock, and a webhook receiver on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dncgate.early_warning.alerts import Alert, OriginatorKey, OriginatorKind, Severity
from dncgate.enforcement.model import CaseAction
from dncgate.enforcement.protocol import CaseStore
from dncgate.enforcement.service import Enforcement, Policy
from dncgate.model import Restriction
from dncgate.store.protocol import ListStore
from tests.conftest import RedisServer, open_test_store

T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
ACME_OUT = OriginatorKey("acme", OriginatorKind.ACCOUNT, "acme-out")


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def alert(alert_id: str = "a-1", *, severity: Severity = Severity.CRITICAL, report_only: bool = False,
          originator: OriginatorKey = ACME_OUT) -> Alert:
    return Alert(alert_id=alert_id, originator=originator, rule="short_calls", severity=severity, raised_at=T0,
                 window="1m", figures={"attempts": 120.0, "short_share": 0.9}, threshold=60.0,
                 report_only=report_only, sample_decisions=("d-1",), sample_calls=("c-1",))


@dataclass
class Stores:
    kind: str
    lists: ListStore
    cases: CaseStore
    reopen: Any  # () -> CaseStore on the same data (a restart)


def open_case_store(kind: str, tmp_path: Path, redis_server: RedisServer) -> CaseStore:
    if kind == "sqlite":
        from dncgate.store.sqlite.cases import SqliteCaseStore

        return SqliteCaseStore(tmp_path / "dncgate.sqlite3")
    from dncgate.store.redis.cases import RedisCaseStore

    return RedisCaseStore.connect(redis_server.url)


@pytest.fixture(params=["sqlite", "redis"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[Stores]:
    lists = await open_test_store(request.param, tmp_path, redis_server)  # flushes the test redis
    cases = open_case_store(request.param, tmp_path, redis_server)
    opened = [cases]

    def reopen() -> CaseStore:
        store = open_case_store(request.param, tmp_path, redis_server)
        opened.append(store)
        return store

    try:
        yield Stores(request.param, lists, cases, reopen)
    finally:
        for store in opened:
            await store.close()
        await lists.close()


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers ``statuses`` in turn (then 200), keeps every body."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    got: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.got.set()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box = Receiver()
    app = web.Application()
    app.router.add_post("/hook", box.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    box.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield box
    finally:
        await runner.cleanup()


async def own_restriction(
    cases: CaseStore, originator: str, per_minute: int = 5,
) -> tuple[Enforcement, str, Restriction]:
    """The reseller's own case for ``originator``, restricted to ``per_minute``: (the enforcement service
    that holds it, the case's id, the restriction)."""
    service = Enforcement(cases, Policy(notice_period=timedelta(0)), tenants=["acme"], clock=Clock())
    step = await service.on_alert(alert())
    assert step is not None
    own = Restriction(per_minute=per_minute, originator=originator)
    await service.act("acme", step.case.case_id, CaseAction.RESTRICT, actor="cli:ops", reason="r", restriction=own)
    return service, step.case.case_id, own
