"""The contract every list store passes: the same tests run on SQLite and on Redis."""

from __future__ import annotations

import asyncio
import random

import pytest

from dncgate.audit_record import AuditRecord
from dncgate.store.errors import UnknownList
from dncgate.store.protocol import ListStore

CN_MOBILE = 8613800138000
US_NUMBER = 12015550123


async def test_empty_store_lists_nothing(store: ListStore) -> None:
    facts = await store.facts("acme", CN_MOBILE)
    assert facts.national is None
    assert facts.tenant_list is None
    assert facts.prefix_rule is None
    assert facts.national_version == ""


async def test_national_snapshot_is_found_with_its_version(store: ListStore) -> None:
    result = await store.replace_list("national", [CN_MOBILE, US_NUMBER, CN_MOBILE])
    assert result.loaded == 2
    assert result.duplicates == 1
    assert result.previous_version is None
    facts = await store.facts("acme", CN_MOBILE)
    assert facts.national is not None
    assert facts.national.list_name == "national"
    assert facts.national.version == result.version
    assert facts.national_version == result.version
    other = await store.facts("acme", CN_MOBILE + 1)
    assert other.national is None
    assert other.national_version == result.version


async def test_new_snapshot_replaces_old_one(store: ListStore) -> None:
    first = await store.replace_list("national", [CN_MOBILE, US_NUMBER])
    second = await store.replace_list("national", [US_NUMBER, 447400123456])
    assert second.version != first.version
    assert second.previous_version == first.version
    assert (await store.facts("t", CN_MOBILE)).national is None
    hit = (await store.facts("t", 447400123456)).national
    assert hit is not None
    assert hit.version == second.version


async def test_empty_snapshot_empties_the_list(store: ListStore) -> None:
    await store.replace_list("national", [CN_MOBILE])
    result = await store.replace_list("national", [])
    assert result.loaded == 0
    facts = await store.facts("t", CN_MOBILE)
    assert facts.national is None
    assert facts.national_version == result.version


async def test_tenant_lists_are_isolated(store: ListStore) -> None:
    await store.replace_list("tenant:acme", [CN_MOBILE])
    acme = await store.facts("acme", CN_MOBILE)
    other = await store.facts("globex", CN_MOBILE)
    assert acme.tenant_list is not None
    assert acme.tenant_list.list_name == "tenant:acme"
    assert other.tenant_list is None
    assert acme.national is None


async def test_add_and_remove_numbers_on_live_version(store: ListStore) -> None:
    await store.replace_list("tenant:acme", [CN_MOBILE])
    assert await store.add_numbers("tenant:acme", [US_NUMBER, CN_MOBILE]) == 1
    assert (await store.facts("acme", US_NUMBER)).tenant_list is not None
    assert await store.remove_numbers("tenant:acme", [CN_MOBILE, 4930123456]) == 1
    assert (await store.facts("acme", CN_MOBILE)).tenant_list is None
    assert (await store.facts("acme", US_NUMBER)).tenant_list is not None


async def test_add_numbers_creates_a_list_that_did_not_exist(store: ListStore) -> None:
    assert await store.add_numbers("tenant:new", [US_NUMBER]) == 1
    assert (await store.facts("new", US_NUMBER)).tenant_list is not None


async def test_prefix_rules_longest_match_per_tenant(store: ListStore) -> None:
    await store.set_prefix_rule("tenant:acme", "86170")
    await store.set_prefix_rule("tenant:acme", "861701234")
    await store.set_prefix_rule("national", "86165")
    hit = (await store.facts("acme", 8617012345678)).prefix_rule
    assert hit is not None
    assert hit.prefix == "861701234"
    assert hit.list_name == "tenant:acme"
    short = (await store.facts("acme", 8617099999999)).prefix_rule
    assert short is not None
    assert short.prefix == "86170"
    assert (await store.facts("globex", 8617012345678)).prefix_rule is None
    national = (await store.facts("globex", 8616512345678)).prefix_rule
    assert national is not None
    assert national.list_name == "national"
    await store.set_prefix_rule("tenant:acme", "861701234", present=False)
    after = (await store.facts("acme", 8617012345678)).prefix_rule
    assert after is not None
    assert after.prefix == "86170"


async def test_bad_names_and_prefixes_are_refused(store: ListStore) -> None:
    with pytest.raises(UnknownList):
        await store.replace_list("everything", [CN_MOBILE])
    with pytest.raises(UnknownList):
        await store.add_numbers("tenant:", [CN_MOBILE])
    with pytest.raises(ValueError, match="prefix"):
        await store.set_prefix_rule("national", "86x")


async def test_stats_report_every_list(store: ListStore) -> None:
    await store.replace_list("national", [CN_MOBILE, US_NUMBER])
    await store.replace_list("tenant:acme", [CN_MOBILE])
    await store.set_prefix_rule("tenant:acme", "86170")
    stats = {s.list_name: s for s in await store.stats()}
    assert stats["national"].count == 2
    assert stats["tenant:acme"].count == 1
    assert stats["tenant:acme"].prefix_rules == 1
    assert stats["national"].version


async def test_many_numbers_in_operator_blocks(store: ListStore) -> None:
    rng = random.Random(7)
    numbers = {8613800000000 + rng.randrange(10**7) for _ in range(20_000)}
    numbers |= {12015550000 + rng.randrange(10**4) for _ in range(2_000)}
    result = await store.replace_list("national", numbers)
    assert result.loaded == len(numbers)
    listed = rng.sample(sorted(numbers), 200)
    absent = [n for n in (8613800000000 + rng.randrange(10**7) for _ in range(400)) if n not in numbers]
    for number in listed:
        assert (await store.facts("t", number)).national is not None, number
    for number in absent[:200]:
        assert (await store.facts("t", number)).national is None, number


async def test_decisions_during_a_swap_are_all_correct(store: ListStore) -> None:
    stable = [8613800000000 + i * 37 for i in range(5_000)]
    first = stable + [8613900000000 + i for i in range(5_000)]
    second = stable + [8613700000000 + i for i in range(5_000)]
    await store.replace_list("national", first)
    stop = asyncio.Event()
    checked = 0

    async def keep_checking() -> None:
        nonlocal checked
        while not stop.is_set():
            for number in stable[::250]:
                assert (await store.facts("t", number)).national is not None
                checked += 1
            await asyncio.sleep(0)

    checker = asyncio.create_task(keep_checking())
    await store.replace_list("national", second)
    await store.replace_list("national", first)
    stop.set()
    await checker
    assert checked > 0


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        decision_id=f"d{i}", at=f"2026-11-27T10:00:{i:02d}.000000+00:00", tenant="acme", door="cli",
        account="a", trunk="", caller_id="", dialled=f"{i}", callee=f"+{CN_MOBILE}", purpose="marketing",
        category=None, verdict="reject", outcome="reject", reason="national_dnc", list_name="national",
        list_version="1", mode="enforce", sip_code=607, latency_us=42,
    )


async def test_audit_records_round_trip_in_order(store: ListStore) -> None:
    records = [_record(i) for i in range(12)]
    await store.append_audit(records[:5])
    await store.append_audit(records[5:])
    tail = await store.audit_tail(3)
    assert [r.decision_id for r in tail] == ["d9", "d10", "d11"]
    exported = [r async for r in store.audit_export()]
    assert exported == records


async def test_a_replayed_audit_record_is_not_added_twice(store: ListStore) -> None:
    # The audit spool replays, after a crash, records the store may already have (by decision id).
    records = [_record(i) for i in range(6)]
    await store.append_audit(records[:4])
    await store.append_audit(records[2:])  # d2, d3 again: a replay overlapping what was written
    await store.append_audit(records[:1] * 3)
    exported = [r async for r in store.audit_export()]
    assert [r.decision_id for r in exported] == [f"d{i}" for i in range(6)]


async def test_ping(store: ListStore) -> None:
    await store.ping()


async def test_sync_state_round_trips_per_list(store: ListStore) -> None:
    assert await store.sync_state("national") == {}
    await store.set_sync_state("national", {"sequence": "41", "etag": '"abc"'})
    await store.set_sync_state("tenant:acme", {"sequence": "7"})
    assert await store.sync_state("national") == {"sequence": "41", "etag": '"abc"'}
    await store.set_sync_state("national", {"sequence": "42"})
    assert await store.sync_state("national") == {"sequence": "42"}
    assert await store.sync_state("tenant:acme") == {"sequence": "7"}
    with pytest.raises(UnknownList):
        await store.sync_state("nope")


async def test_facts_with_an_entity_and_no_ledger_records(store: ListStore) -> None:
    await store.replace_list("national", [CN_MOBILE])
    facts = await store.facts("acme", CN_MOBILE, entity="bank-1")
    assert facts.national is not None
    assert facts.consent is None
    assert facts.declined_categories == frozenset()
    assert not facts.subscriber_blocks_originator
