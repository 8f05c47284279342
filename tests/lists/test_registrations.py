"""Ledger registrations reach the upstream outbox once each, with the ledger record as idempotency key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dncgate.consent.model import Action, Channel, Evidence, LedgerEvent
from dncgate.lists.registrations import forward_once
from dncgate.lists.upstream import Outbox
from dncgate.settings import ConsentSettings
from dncgate.store.sqlite.ledger import SqliteLedger

CALLEE = "+8613800138000"


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[SqliteLedger, Outbox]]:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", ConsentSettings())
    outbox = Outbox(tmp_path / "outbox.sqlite3", region="CN")
    try:
        yield ledger, outbox
    finally:
        await ledger.close()
        await outbox.close()


def preference(action: Action, categories: tuple[str, ...] = (), entity: str = "") -> LedgerEvent:
    evidence = Evidence(Channel.IVR, datetime(2026, 11, 27, tzinfo=UTC), "13800138000", "ivr-menu-1", "ivr")
    return LedgerEvent(tenant="acme", action=action, callee=CALLEE, categories=categories, entity=entity,
                       evidence=evidence)


async def test_declines_and_withdrawals_are_forwarded_once(parts: tuple[SqliteLedger, Outbox]) -> None:
    ledger, outbox = parts
    decline_all = await ledger.append(preference(Action.DECLINE, ("*",)))
    some = await ledger.append(preference(Action.DECLINE, ("finance", "health")))
    await ledger.append(preference(Action.BLOCK, entity="bank-1"))  # not for the national platform
    withdraw = await ledger.append(preference(Action.WITHDRAW))
    assert await forward_once(ledger, outbox, ["acme", "globex"]) == 3
    assert await ledger.outbox("acme") == []  # acknowledged
    assert await forward_once(ledger, outbox, ["acme"]) == 0
    due = {r.key: r for r in await outbox.due(10)}
    assert set(due) == {decline_all.id, some.id, withdraw.id}
    assert (due[decline_all.id].action, due[decline_all.id].category) == ("add", None)
    assert due[some.id].category == "finance,health"
    assert due[withdraw.id].action == "remove"
    assert all(r.number == CALLEE and r.channel == "ivr" for r in due.values())


async def test_a_crash_before_the_ack_does_not_double_a_registration(parts: tuple[SqliteLedger, Outbox]) -> None:
    ledger, outbox = parts
    record = await ledger.append(preference(Action.DECLINE, ("*",)))
    events = await ledger.outbox("acme")
    # The first attempt queued it upstream but "crashed" before acknowledging the ledger.
    await outbox.enqueue_registration(CALLEE, channel="ivr", key=events[0].id)
    assert await forward_once(ledger, outbox, ["acme"]) == 1
    assert [r.key for r in await outbox.due(10)] == [record.id]
    assert sum((await outbox.counts()).values()) == 1
