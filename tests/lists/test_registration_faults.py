"""Registration forwarding survives bad input and unexpected errors: a reseller's non-string
category is refused with a 4xx, a failed outbox write is rolled back (the next write works), and
the ledger forwarder keeps running (logged, backed off) and still stops on cancellation."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from dncgate.consent.model import Action, Channel, Evidence, LedgerEvent
from dncgate.lists.feed import FeedServer
from dncgate.lists.registrations import run_forwarder
from dncgate.lists.sources import Registration
from dncgate.lists.upstream import Outbox, RegistrationError
from tests.polls import poll_until


class NoBackoff:
    def delay(self, attempt: int) -> float:
        return 0.01


class FlakyLedger:
    """A ledger whose first ``failures`` reads raise ``error``; then one decline, then nothing."""

    def __init__(self, error: BaseException, failures: int = 2) -> None:
        self.error, self.failures, self.reads, self.acked = error, failures, 0, 0
        evidence = Evidence(Channel.IVR, datetime(2026, 11, 27, tzinfo=UTC), "2025550103", "ivr-menu-1", "ivr")
        self.pending = [LedgerEvent(tenant="default", action=Action.DECLINE, callee="+12025550103",
                                    evidence=evidence)]

    async def outbox(self, tenant: str, limit: int = 100) -> list[LedgerEvent]:
        self.reads += 1
        if self.reads <= self.failures:
            raise self.error
        return list(self.pending)

    async def ack_outbox(self, tenant: str, count: int) -> None:
        self.acked += count
        self.pending = self.pending[count:]


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite3", region="US")
    try:
        yield box
    finally:
        await box.close()


async def test_feed_refuses_a_non_string_category_and_keeps_taking_registrations(
    tmp_path: Path, outbox: Outbox
) -> None:
    server = FeedServer(tmp_path, {"r": "t"}, registrations=outbox)
    await server.start()
    headers = {"Authorization": "Bearer t"}
    answers: list[tuple[int, Any]] = []
    try:
        async with aiohttp.ClientSession() as session:
            for body in ({"number": "+12025550100", "category": ["x"]},
                         {"number": "+12025550100", "category": {"a": 1}},
                         {"number": "+12025550100", "category": 7},
                         {"number": "+12025550101", "category": "finance"},
                         {"number": "+12025550102"}):
                async with session.post(server.url + "registrations", json=body, headers=headers) as response:
                    answers.append((response.status, await response.json()))
    finally:
        await server.close()
    assert [status for status, _ in answers] == [422, 422, 422, 202, 202]
    assert "category" in answers[0][1]["error"]
    due = sorted((r.number, r.category) for r in await outbox.due(10))
    assert due == [("+12025550101", "finance"), ("+12025550102", None)]
    # A ledger registration after the refused requests still goes through.
    await outbox.enqueue_registration("+12025550103", channel="ivr", key="ledger-rec-1")
    assert (await outbox.counts())["queued"] == 3


async def test_enqueue_checks_the_category_itself(outbox: Outbox) -> None:
    with pytest.raises(RegistrationError, match="category"):
        await outbox.enqueue_registration("+12025550100", channel="api", category=["x"])  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match="category"):
        await outbox.enqueue_registration("+12025550100", channel="api", category="x" * 5000)
    assert await outbox.counts() == {}


async def test_a_failed_outbox_write_is_rolled_back(outbox: Outbox) -> None:
    # Bypass validation: the insert fails inside BEGIN IMMEDIATE, as any unexpected SQLite error would.
    bad = Registration("k-1", "+12025550100", "add", "api", "2026-11-27T00:00:00Z", ["x"])  # type: ignore[arg-type]
    with pytest.raises(sqlite3.ProgrammingError, match="not supported"):
        await outbox._run(outbox._insert, bad)
    assert outbox._db().in_transaction is False
    await outbox.enqueue_registration("+12025550101", channel="ivr", key="ledger-rec-1")
    assert [r.key for r in await outbox.due(10)] == ["ledger-rec-1"]
    assert [e for e, _ in await outbox.trail("k-1")] == []  # nothing of the failed write survived


@pytest.mark.parametrize("error", [RuntimeError("boom"), ValueError("bad")])
async def test_the_forwarder_survives_unexpected_errors(outbox: Outbox, error: Exception) -> None:
    ledger = FlakyLedger(error)
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(run_forwarder(ledger, outbox, ["default"], stop,  # type: ignore[arg-type]
                                                 interval=0.01, backoff=NoBackoff()))
        await poll_until(lambda: bool(ledger.acked), "the forwarder acked the ledger")
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 30)
    assert ledger.acked == 1
    assert [r.number for r in await outbox.due(10)] == ["+12025550103"]
    errors = [e for e in logs if e["event"] == "registrations.forwarder_error"]
    assert len(errors) == 2
    assert errors[0]["log_level"] == "error"
    assert type(error).__name__ in errors[0]["error"]


async def test_the_forwarder_stops_when_cancelled(outbox: Outbox) -> None:
    ledger = FlakyLedger(RuntimeError("boom"), failures=10**6)
    task = asyncio.create_task(run_forwarder(ledger, outbox, ["default"], asyncio.Event(),  # type: ignore[arg-type]
                                             interval=0.01, backoff=NoBackoff()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # A CancelledError raised inside the ledger read is not swallowed either.
    cancelling = FlakyLedger(asyncio.CancelledError(), failures=1)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run_forwarder(cancelling, outbox, ["default"], asyncio.Event(),  # type: ignore[arg-type]
                                             interval=0.01, backoff=NoBackoff()), 30)
