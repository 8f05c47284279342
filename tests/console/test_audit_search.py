"""The console's audit searches on both stores: filters, pages, one record, per-minute counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dncgate.audit_record import AuditRecord
from dncgate.store.audit_query import AuditQuery
from tests.conftest import RedisServer, open_test_store


def record(i: int, **changes: Any) -> AuditRecord:
    fields: dict[str, Any] = dict(
        decision_id=f"{i:032x}", at=f"2026-12-02T10:{i // 60:02d}:{i % 60:02d}.000000+00:00", tenant="acme",
        door="agi", account=f"acct-{i % 3}", trunk="", caller_id=f"+86100{i % 5}", dialled=f"1380013{i:04d}",
        callee=f"+86138001{i % 10:05d}", purpose="marketing", category=None, verdict="reject", outcome="reject",
        reason="national_dnc" if i % 2 else "allowed_clear", list_name="national", list_version="3",
        mode="enforce", sip_code=607, latency_us=120)
    fields.update(changes)
    return AuditRecord(**fields)


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[Any]:
    opened = await open_test_store(request.param, tmp_path, redis_server)
    records = [record(i) for i in range(200)] + [record(1000 + i, tenant="beta") for i in range(20)]
    await opened.append_audit(records)
    yield opened
    await opened.close()


async def test_a_number_search_pages_newest_first(store: Any) -> None:
    query = AuditQuery(tenants=("acme",), callees=("+8613800100003",), limit=7)
    first = await store.audit_search(query)
    assert [r.decision_id for r in first.records] == [f"{i:032x}" for i in (193, 183, 173, 163, 153, 143, 133)]
    assert first.next
    second = await store.audit_search(AuditQuery(tenants=("acme",), callees=("+8613800100003",), limit=7,
                                                 before=first.next))
    assert [int(r.decision_id, 16) for r in second.records] == [123, 113, 103, 93, 83, 73, 63]
    rest = await store.audit_search(AuditQuery(tenants=("acme",), callees=("+8613800100003",), limit=7,
                                               before=second.next))
    assert [int(r.decision_id, 16) for r in rest.records] == [53, 43, 33, 23, 13, 3]
    assert rest.next == ""


async def test_filters_combine_and_tenants_are_kept_apart(store: Any) -> None:
    page = await store.audit_search(AuditQuery(tenants=("acme",), originator="acct-1", reason="national_dnc",
                                               since="2026-12-02T10:01:00", until="2026-12-02T10:02:00", limit=100))
    ids = [int(r.decision_id, 16) for r in page.records]
    assert ids == [i for i in range(119, 59, -1) if i % 3 == 1 and i % 2 == 1]
    by_caller = await store.audit_search(AuditQuery(tenants=("acme",), originator="+861004", limit=200))
    assert {r.caller_id for r in by_caller.records} == {"+861004"}
    assert len(by_caller.records) == 40
    beta = await store.audit_search(AuditQuery(tenants=("beta",), limit=200))
    assert {r.tenant for r in beta.records} == {"beta"}
    assert len(beta.records) == 20
    assert (await store.audit_search(AuditQuery(tenants=(), limit=10))).records == []


async def test_one_record_by_its_decision_id(store: Any) -> None:
    found = await store.audit_record(f"{42:032x}")
    assert found == record(42)
    assert await store.audit_record("f" * 32) is None


async def test_decisions_are_counted_per_minute(store: Any) -> None:
    counts = await store.audit_minutes(("acme",), "2026-12-02T10:00")
    by_minute: dict[str, int] = {}
    for c in counts:
        by_minute[c.minute] = by_minute.get(c.minute, 0) + c.count
        assert c.tenant == "acme"
    assert by_minute == {"2026-12-02T10:00": 60, "2026-12-02T10:01": 60, "2026-12-02T10:02": 60,
                         "2026-12-02T10:03": 20}
    reasons = {(c.minute, c.reason): c.count for c in counts}
    assert reasons[("2026-12-02T10:00", "national_dnc")] == 30
    # a record replayed (same decision id) is not counted twice
    await store.append_audit([record(5)])
    again = await store.audit_minutes(("acme",), "2026-12-02T10:00")
    assert sum(c.count for c in again) == 200
