"""The consent ledger on both backends: current state in facts(), history, chain, outbox, retention."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from dncgate.consent.ledger import ChainPoint
from dncgate.consent.model import GENESIS, Action, ConsentState, LedgerError, LedgerEvent, chain_hash
from dncgate.model import ConsentStatus
from dncgate.settings import ConsentSettings
from dncgate.store.errors import StoreCorrupt
from dncgate.store.redis import ledger_keys
from dncgate.store.sqlite.ledger import SqliteLedger
from tests.conftest import RedisServer
from tests.consent.conftest import Backend, event

CALLEE = 8613800138000


async def test_grant_is_in_the_next_lookup_for_that_entity_only(backend: Backend) -> None:
    sealed = await backend.ledger.append(event(Action.GRANT, categories=("finance",)))
    facts = await backend.store.facts("acme", CALLEE, entity="bank-1")
    assert facts.consent is not None
    assert facts.consent.status is ConsentStatus.GRANTED
    assert facts.consent.categories == frozenset({"finance"})
    assert facts.consent.record_id == sealed.id
    assert (await backend.store.facts("acme", CALLEE, entity="bank-2")).consent is None
    assert (await backend.store.facts("acme", CALLEE)).consent is None
    assert (await backend.store.facts("globex", CALLEE, entity="bank-1")).consent is None  # other tenant
    assert (await backend.store.facts("acme", CALLEE + 1, entity="bank-1")).consent is None


async def test_grants_merge_scopes_and_revocations_narrow_them(backend: Backend) -> None:
    ledger, store = backend.ledger, backend.store
    await ledger.append(event(Action.GRANT, categories=("finance",)))
    await ledger.append(event(Action.GRANT, categories=("travel",)))
    facts = await store.facts("acme", CALLEE, entity="bank-1")
    assert facts.consent is not None
    assert facts.consent.categories == frozenset({"finance", "travel"})
    await ledger.append(event(Action.REVOKE, categories=("finance",)))
    facts = await store.facts("acme", CALLEE, entity="bank-1")
    assert facts.consent is not None
    assert (facts.consent.status, facts.consent.categories) == (ConsentStatus.GRANTED, frozenset({"travel"}))
    revoked = await ledger.append(event(Action.REVOKE))
    facts = await store.facts("acme", CALLEE, entity="bank-1")
    assert facts.consent is not None
    assert (facts.consent.status, facts.consent.record_id) == (ConsentStatus.REVOKED, revoked.id)


async def test_revoking_part_of_an_all_category_grant_keeps_the_rest_of_the_taxonomy(backend: Backend) -> None:
    await backend.ledger.append(event(Action.GRANT))
    await backend.ledger.append(event(Action.REVOKE, categories=("health",)))
    consent = (await backend.store.facts("acme", CALLEE, entity="bank-1")).consent
    assert consent is not None
    assert "health" not in consent.categories
    assert {"finance", "food"} <= consent.categories


async def test_validity_window_reaches_the_facts(backend: Backend) -> None:
    now = backend.clock.now
    await backend.ledger.append(event(Action.GRANT, valid_from=now, expires_at=now + timedelta(days=30)))
    consent = (await backend.store.facts("acme", CALLEE, entity="bank-1")).consent
    assert consent is not None
    assert consent.valid_from == now
    assert consent.expires_at == now + timedelta(days=30)


async def test_preferences_and_blocks(backend: Backend) -> None:
    ledger, store = backend.ledger, backend.store
    await ledger.append(event(Action.DECLINE, categories=("finance", "health")))
    facts = await store.facts("acme", CALLEE, entity="bank-1")
    assert facts.declined_categories == frozenset({"finance", "health"})
    assert not facts.subscriber_blocks_originator
    await ledger.append(event(Action.DECLINE))  # no categories: all marketing
    assert (await store.facts("acme", CALLEE)).declined_categories == frozenset({"*"})
    await ledger.append(event(Action.BLOCK, entity="collector-9"))
    assert (await store.facts("acme", CALLEE, entity="collector-9")).subscriber_blocks_originator
    assert not (await store.facts("acme", CALLEE, entity="bank-1")).subscriber_blocks_originator
    await ledger.append(event(Action.WITHDRAW))
    facts = await store.facts("acme", CALLEE, entity="collector-9")
    assert facts.declined_categories == frozenset()
    assert facts.subscriber_blocks_originator  # withdrawing the registration does not lift a block
    await ledger.append(event(Action.UNBLOCK, entity="collector-9"))
    assert not (await store.facts("acme", CALLEE, entity="collector-9")).subscriber_blocks_originator
    prefs = await ledger.preferences("acme", CALLEE)
    assert (prefs.declined, prefs.blocks) == (frozenset(), frozenset())
    assert (await store.facts("globex", CALLEE)).declined_categories == frozenset()


async def test_history_is_a_hash_chain_with_evidence(backend: Backend) -> None:
    first = await backend.ledger.append(event(Action.GRANT, categories=("finance",)))
    backend.clock.advance(timedelta(minutes=1))
    second = await backend.ledger.append(event(Action.REVOKE))
    history = [e async for e in backend.ledger.history("acme")]
    assert [e.id for e in history] == [first.id, second.id]
    assert [e.seq for e in history] == [1, 2]
    assert history[0].prev_hash == GENESIS
    assert history[1].prev_hash == history[0].hash
    for record in history:
        assert record.hash == chain_hash(record.prev_hash, record.body())
        assert record.evidence is not None
        assert record.evidence.shown == "template:web-optin-v3"
    assert await backend.ledger.head("acme") == ChainPoint(2, second.hash, second.recorded_at)
    other = await backend.ledger.append(event(Action.GRANT, tenant="globex"))
    assert other.seq == 1  # every tenant has its own chain
    assert [e.id async for e in backend.ledger.history("acme", CALLEE)] == [first.id, second.id]
    assert [e.id async for e in backend.ledger.history("acme", CALLEE + 1)] == []


async def test_consents_query_lists_each_entity(backend: Backend) -> None:
    await backend.ledger.append(event(Action.GRANT, entity="bank-1"))
    await backend.ledger.append(event(Action.REVOKE, entity="shop-2"))
    states = await backend.ledger.consents("acme", CALLEE)
    assert sorted(states) == ["bank-1", "shop-2"]
    assert isinstance(states["bank-1"], ConsentState)
    assert states["shop-2"].status is ConsentStatus.REVOKED
    assert states["shop-2"].evidence is not None


async def test_registrations_are_queued_for_upload(backend: Backend) -> None:
    await backend.ledger.append(event(Action.GRANT))
    declined = await backend.ledger.append(event(Action.DECLINE, categories=("food",)))
    withdrawn = await backend.ledger.append(event(Action.WITHDRAW))
    queued = await backend.ledger.outbox("acme")
    assert [e.id for e in queued] == [declined.id, withdrawn.id]
    await backend.ledger.ack_outbox("acme", 1)
    assert [e.id for e in await backend.ledger.outbox("acme")] == [withdrawn.id]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (event(Action.GRANT, categories=("astrology",)), "unknown astrology"),
        (event(Action.GRANT, entity="bank 1"), "entity"),
        (event(Action.GRANT, callee="8613800138000"), "E.164"),
        (event(Action.GRANT, tenant="ac me"), "tenant"),
        (LedgerEvent(tenant="acme", action=Action.GRANT, callee="+8613800138000", entity="b"), "evidence"),
    ],
)
async def test_bad_records_are_refused(backend: Backend, bad: LedgerEvent, message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        await backend.ledger.append(bad)
    assert [e async for e in backend.ledger.history("acme")] == []


async def test_purge_is_refused_inside_retention_and_recorded_after_it(backend: Backend) -> None:
    ledger, clock = backend.ledger, backend.clock
    old = await ledger.append(event(Action.GRANT, categories=("finance",)))
    clock.advance(timedelta(days=40))
    kept = await ledger.append(event(Action.DECLINE, categories=("food",)))
    with pytest.raises(LedgerError, match="retention"):
        await ledger.purge("acme", clock.now, by="ops")
    clock.advance(timedelta(days=150))  # the first record is now > 5 months old, the second is not
    with pytest.raises(LedgerError, match="retention"):
        await ledger.purge("acme", kept.recorded_at + timedelta(seconds=1), by="ops")  # type: ignore[operator]
    purge = await ledger.purge("acme", old.recorded_at + timedelta(seconds=1), by="ops")  # type: ignore[operator]
    assert purge.action is Action.PURGE
    assert '"deleted": 1' in purge.detail
    assert '"by": "ops"' in purge.detail
    remaining = [e async for e in ledger.history("acme")]
    assert [e.id for e in remaining] == [kept.id, purge.id]
    assert await ledger.anchor("acme") == ChainPoint(old.seq, old.hash, old.recorded_at)
    # The current state survives the purge of its history, with its evidence.
    consent = (await ledger.consents("acme", CALLEE))["bank-1"]
    assert consent.record_id == old.id
    assert consent.evidence is not None


async def test_sqlite_history_cannot_be_edited_or_deleted_inside_retention(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", ConsentSettings())
    try:
        await ledger.append(event(Action.GRANT))
    finally:
        await ledger.close()
    conn = sqlite3.connect(tmp_path / "ledger.sqlite3")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE consent_log SET event = '{}'")
        with pytest.raises(sqlite3.IntegrityError, match="retention"):
            conn.execute("DELETE FROM consent_log")
        assert conn.execute("SELECT count(*) FROM consent_log").fetchone() == (1,)
    finally:
        conn.close()


async def test_a_corrupt_current_state_is_store_corrupt_in_facts(
    backend: Backend, tmp_path: Path, redis_server: RedisServer
) -> None:
    """consent.facts reads the state but knows no store: each backend raises its StoreCorrupt,
    so the gate fails closed exactly as before the rooms were split."""
    await backend.ledger.append(event(Action.GRANT))
    if backend.name == "sqlite":
        with sqlite3.connect(tmp_path / "dncgate.sqlite3") as conn:
            conn.execute("UPDATE consent_current SET state = '{\"status\": \"granted\"}'")
    else:
        raw = Redis.from_url(redis_server.url)
        try:
            await raw.set(ledger_keys.consent("acme", "bank-1", CALLEE), "not json")
        finally:
            await raw.aclose()
    with pytest.raises(StoreCorrupt, match="not a consent state"):
        await backend.store.facts("acme", CALLEE, entity="bank-1")
    assert (await backend.store.facts("acme", CALLEE)).consent is None  # no entity: the state is not read
