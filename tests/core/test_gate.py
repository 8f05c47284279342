"""The shared check path: numbers + store + decide() + log + audit, with a real SQLite store."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from dncgate.audit import AuditSink
from dncgate.audit_record import AuditRecord, new_decision_id
from dncgate.gate import CheckRequest, CheckResult, Gate, language_tag
from dncgate.metrics import GateMetrics
from dncgate.model import Facts, Mode, Originator, Reason, TenantPolicy, Verdict
from dncgate.numbers import DialPlan
from dncgate.store.errors import StoreUnavailable
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import TEST_STORE_DEADLINE

TENANTS = {
    "default": TenantPolicy(name="default", dial_plan=DialPlan(region="CN", technical_prefixes=("17951",))),
    "watch": TenantPolicy(name="watch", dial_plan=DialPlan(region="CN"), mode=Mode.MONITOR),
}
LOG = structlog.get_logger("test")


async def settled(gate: Gate, request: CheckRequest) -> CheckResult:
    """Check, then let the loop turn once: the log line and the audit record follow the verdict."""
    result = await gate.check(request, LOG)
    await asyncio.sleep(0)
    return result


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteListStore]:
    backend = SqliteListStore(tmp_path / "gate.sqlite3")
    await backend.replace_list("national", [8613800138000])
    await backend.replace_list("tenant:default", [8613900139000])
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def gate(store: SqliteListStore) -> AsyncIterator[Gate]:
    audit = AuditSink(store)
    audit.start()
    try:
        yield Gate(TENANTS, store, audit, store_deadline=TEST_STORE_DEADLINE)
    finally:
        await audit.close()


@pytest.mark.parametrize(
    ("dialled", "purpose", "verdict", "reason"),
    [
        ("13800138000", "marketing", Verdict.REJECT, Reason.NATIONAL_DNC),
        ("+86 138 0013 8000", None, Verdict.REJECT, Reason.NATIONAL_DNC),
        ("008613800138000", "MARKETING", Verdict.REJECT, Reason.NATIONAL_DNC),
        ("1795113800138000", "marketing", Verdict.REJECT, Reason.NATIONAL_DNC),
        ("sip:13800138000@127.0.0.1", "marketing", Verdict.REJECT, Reason.NATIONAL_DNC),
        ("13900139000", "marketing", Verdict.REJECT, Reason.TENANT_DNC),
        ("13800138001", "marketing", Verdict.ALLOW, Reason.ALLOWED_CLEAR),
        ("13800138000", "service", Verdict.ALLOW, Reason.ALLOWED_SERVICE),
        ("13800138000", "bogus-purpose", Verdict.REJECT, Reason.NATIONAL_DNC),
        ("110", "marketing", Verdict.ALLOW, Reason.ALLOWED_EMERGENCY),
        ("138001380", "marketing", Verdict.REJECT, Reason.INVALID_NUMBER),
    ],
)
async def test_check(gate: Gate, dialled: str, purpose: str | None, verdict: Verdict, reason: Reason) -> None:
    result = await settled(gate, CheckRequest(dialled=dialled, door="test", purpose=purpose))
    assert (result.decision.verdict, result.decision.reason) == (verdict, reason)
    assert result.record.dialled == dialled
    assert result.record.decision_id == result.decision_id


async def test_every_decision_is_logged_and_audited(gate: Gate, store: SqliteListStore) -> None:
    request = CheckRequest(
        dialled="13800138000", door="test", tenant="default", purpose="marketing",
        originator=Originator(account="dialer-7", trunk="t1", caller_id="4001234567"),
    )
    with capture_logs() as logs:
        result = await settled(gate, request)
    line = next(entry for entry in logs if entry["event"] == "decision.rejected")
    assert line["callee"] == "+8613800138000"
    assert line["account"] == "dialer-7"
    assert line["list_name"] == "national"
    assert line["list_version"]
    assert line["latency_us"] >= 0
    await gate.audit.close()
    tail = await store.audit_tail(5)
    assert [r.decision_id for r in tail] == [result.decision_id]
    assert tail[0].reason == "national_dnc"


async def test_monitor_mode_logs_the_would_be_reject(gate: Gate) -> None:
    with capture_logs() as logs:
        result = await settled(gate, CheckRequest(dialled="13800138000", door="test", tenant="watch"))
    assert result.decision.verdict is Verdict.ALLOW
    assert result.decision.outcome is Verdict.REJECT
    assert [e["event"] for e in logs] == ["decision.monitored"]


async def test_unknown_tenant_fails_closed_for_marketing(gate: Gate) -> None:
    with capture_logs() as logs:
        result = await settled(gate, CheckRequest(dialled="+8613800138001", door="test", tenant="nobody"))
    assert result.decision.verdict is Verdict.REJECT
    assert result.decision.reason is Reason.UNKNOWN_TENANT
    assert (result.decision.sip_code, result.decision.announcement) == (603, None)
    assert result.decision.detail == "tenant 'nobody' is not configured"
    assert result.record.tenant == "nobody"
    assert logs[0]["event"] == "decision.rejected_on_failure"
    assert logs[0]["reason"] == "unknown_tenant"


@pytest.mark.parametrize("blank", ["", "  "])
async def test_a_blank_tenant_is_unknown_not_the_default_tenant(gate: Gate, blank: str) -> None:
    """Listed on the default tenant's list, so the default tenant would say tenant_dnc: a blank
    tenant is a configuration fault whatever the default tenant would decide."""
    result = await settled(gate, CheckRequest(dialled="+8613900139000", door="test", tenant=blank))
    assert (result.decision.verdict, result.decision.reason) == (Verdict.REJECT, Reason.UNKNOWN_TENANT)
    assert "blank" in result.decision.detail
    service = await settled(gate, CheckRequest(dialled="+8613900139000", door="test", tenant=blank,
                                               purpose="service"))
    assert (service.decision.verdict, service.decision.reason) == (Verdict.ALLOW, Reason.UNKNOWN_TENANT)


async def test_an_unknown_tenant_still_reaches_emergency_numbers(gate: Gate) -> None:
    result = await settled(gate, CheckRequest(dialled="110", door="test", tenant="nobody"))
    assert (result.decision.verdict, result.decision.reason) == (Verdict.ALLOW, Reason.ALLOWED_EMERGENCY)


class BrokenStore(SqliteListStore):
    """Refuses every lookup, or (``hangs``) never answers one: only the gate's deadline ends it."""

    def __init__(self, path: Path, *, hangs: bool = False) -> None:
        super().__init__(path)
        self.hangs = hangs

    async def facts(self, tenant: str, number: int, *, entity: str = "", originators: Sequence[str] = ()) -> Facts:
        if self.hangs:
            await asyncio.Event().wait()
        raise StoreUnavailable("connection refused")

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        raise StoreUnavailable("connection refused")


@pytest.mark.parametrize("hangs", [False, True])
async def test_store_failure_fails_closed_and_says_so(tmp_path: Path, hangs: bool) -> None:
    store = BrokenStore(tmp_path / "x.sqlite3", hangs=hangs)
    audit = AuditSink(store, retry_delay=0.01)
    audit.start()
    # the deadline fires only for the store that hangs; the refusing one must not race it
    gate = Gate(TENANTS, store, audit, store_deadline=0.05 if hangs else TEST_STORE_DEADLINE)
    try:
        with capture_logs() as logs:
            marketing = await settled(gate, CheckRequest(dialled="+8613800138001", door="test"))
            service = await settled(gate,
                CheckRequest(dialled="+8613800138001", door="test", purpose="service"))
        assert marketing.decision.verdict is Verdict.REJECT
        assert marketing.decision.reason is Reason.CHECK_FAILED
        assert marketing.decision.sip_code == 603
        assert service.decision.verdict is Verdict.ALLOW
        events = [e["event"] for e in logs if e["event"].startswith("decision.")]
        assert events == ["decision.rejected_on_failure", "decision.allowed_on_failure"]
        # a store that never answers is ended by the store deadline, which the detail names
        expected = "store did not answer within 50 ms" if hangs else "connection refused"
        assert expected in marketing.decision.detail
        assert expected in service.decision.detail
    finally:
        with capture_logs() as shutdown:
            await audit.close(timeout=0.05)
        await store.close()
    # The store never took the records: each one is written whole into the log instead.
    unwritten = [e for e in shutdown if e["event"] == "audit.unwritten_at_shutdown"]
    assert {e["decision_id"] for e in unwritten} == {marketing.decision_id, service.decision_id}


def test_decision_ids_are_128_bit_hex_and_a_forked_child_does_not_repeat_them() -> None:
    ids = {new_decision_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write_end, " ".join(new_decision_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    child_ids = os.read(read_end, 4096).decode().split()
    os.close(read_end)
    parent_ids = [new_decision_id() for _ in range(3)]
    assert len(child_ids) == 3
    assert not set(child_ids) & set(parent_ids)


async def test_deferred_record_waits_for_the_door(gate: Gate, store: SqliteListStore) -> None:
    pending: list[Callable[[], None]] = []
    with capture_logs() as logs:
        result = await gate.check(CheckRequest(dialled="13800000000", door="agi"), LOG, defer=pending.append)
        await asyncio.sleep(0.01)
        assert not [e for e in logs if e["event"].startswith("decision.")]
        (finish,) = pending
        finish()
    assert [e["decision_id"] for e in logs if e["event"].startswith("decision.")] == [result.decision_id]


async def test_a_record_taken_off_the_queue_during_the_linger_is_not_lost_at_shutdown() -> None:
    class SlowStore:
        def __init__(self) -> None:
            self.appended: list[AuditRecord] = []

        async def append_audit(self, batch: Sequence[AuditRecord]) -> None:
            await asyncio.sleep(0)
            self.appended.extend(batch)

    def record(i: int) -> AuditRecord:
        return AuditRecord(
            decision_id=f"id{i}", at="2026-11-28T00:00:00+00:00", tenant="t", door="agi", account="", trunk="",
            caller_id="", dialled="2125551234", callee="+12125551234", purpose="marketing", category=None,
            verdict="reject", outcome="reject", reason="national_dnc", list_name="national", list_version="1",
            mode="enforce", sip_code=607, latency_us=1)

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(1_000):  # loop turns, not time
            if condition():
                return
            await asyncio.sleep(0)
        raise AssertionError("the writer did not get there")

    store = SlowStore()
    sink = AuditSink(store, linger=0)  # type: ignore[arg-type]
    sink.start()
    sink.submit(record(1))
    await until(lambda: bool(store.appended))  # written
    sink._linger = 3600.0  # the writer now lingers far longer than any shutdown grace
    sink.submit(record(2))
    await until(lambda: bool(sink._current))  # taken by the writer, which lingers
    with capture_logs() as logs:
        await sink.close(timeout=0.02)  # the shutdown grace ends during the linger
    assert [r.decision_id for r in store.appended] == ["id1"]
    assert [(e["event"], e["decision_id"]) for e in logs] == [("audit.unwritten_at_shutdown", "id2")]
    assert sink.overflowed == 1


async def test_the_sink_holds_queue_size_records_overflows_beyond_and_close_writes_what_it_holds() -> None:
    class Store:
        def __init__(self) -> None:
            self.appended: list[str] = []

        async def append_audit(self, batch: Sequence[AuditRecord]) -> None:
            self.appended.extend(r.decision_id for r in batch)

    def record(i: int) -> AuditRecord:
        return AuditRecord(
            decision_id=f"id{i}", at="2026-11-28T00:00:00+00:00", tenant="t", door="agi", account="", trunk="",
            caller_id="", dialled="2125551234", callee="+12125551234", purpose="marketing", category=None,
            verdict="allow", outcome="allow", reason="allowed_clear", list_name=None, list_version=None,
            mode="enforce", sip_code=None, latency_us=1)

    store = Store()
    sink = AuditSink(store, queue_size=3, linger=3600.0, batch_size=2)  # type: ignore[arg-type]
    with capture_logs() as logs:
        for i in range(5):  # the writer has not run yet: three are queued, two overflow
            sink.submit(record(i))
    assert (sink.backlog, sink.overflowed) == (3, 2)
    assert [e["decision_id"] for e in logs if e["event"] == "audit.overflow"] == ["id3", "id4"]
    sink._linger = 0
    sink.start()
    await sink.close(timeout=1.0)  # two batches (batch_size 2), then nothing is left
    assert (store.appended, sink.backlog, sink.written, sink.overflowed) == (["id0", "id1", "id2"], 0, 3, 2)


@pytest.mark.parametrize(
    ("value", "tag"),
    [("en", "en"), ("fr-CA", "fr-CA"), ("en_GB", "en_GB"), ("zh-Hans-CN", "zh-Hans-CN"), ("yue", "yue"),
     (None, None), ("", None), ("EN", None), ("e", None), ("../../../../tmp/x", None), ("${system id}", None),
     ("en/../x", None), ("en-", None), ("en-a", None), ("en\n", None), ("fr-" + "a" * 9, None),
     ("en" + "-abcdefgh" * 4, None)],  # 38 characters: over the 35 allowed
)
def test_language_tag(value: str | None, tag: str | None) -> None:
    assert language_tag(value) == tag


async def test_a_language_that_is_no_tag_falls_back_to_the_tenants_and_is_counted(store: SqliteListStore) -> None:
    """Issue 11.14: the language is checked once, in the gate, whatever door it came through."""
    audit = AuditSink(store)
    audit.start()
    metrics = GateMetrics()
    gate = Gate(TENANTS, store, audit, store_deadline=TEST_STORE_DEADLINE, metrics=metrics)
    try:
        with capture_logs() as logs:
            bad = await settled(gate, CheckRequest("13800138000", "cli", purpose="marketing", language="../x"))
            good = await settled(gate, CheckRequest("13800138000", "cli", purpose="marketing", language="zh-CN"))
    finally:
        await audit.close()
    assert (bad.attempt.language, bad.decision.announcement) == (None, "dncgate/en/declined")
    assert (good.attempt.language, good.decision.announcement) == ("zh-CN", "dncgate/zh-CN/declined")
    refused = [e for e in logs if e["event"] == "gate.language_refused"]
    assert [(e["language"], e["used"], e["log_level"]) for e in refused] == [("../x", "en", "warning")]
    assert metrics.registry.get_sample_value("dncgate_language_fallbacks_total", {"door": "cli"}) == 1


async def test_unknown_tenants_are_one_metrics_label(store: SqliteListStore) -> None:
    """Issue 11.16: 5,000 made-up ?tenant= names added 10,000 series; now they are all ``unknown``."""
    audit = AuditSink(store)
    audit.start()
    metrics = GateMetrics()
    gate = Gate(TENANTS, store, audit, store_deadline=TEST_STORE_DEADLINE, metrics=metrics)
    try:
        for i in range(300):
            await settled(gate, CheckRequest("13800138000", "agi", tenant=f"made-up-{i}", purpose="marketing"))
        await settled(gate, CheckRequest("13800138000", "agi", tenant="watch", purpose="marketing"))
        await settled(gate, CheckRequest("13800138000", "agi", tenant="default!", purpose="marketing"))
    finally:
        await audit.close()
    (family,) = [f for f in metrics.registry.collect() if f.name == "dncgate_decisions"]
    totals = [s for s in family.samples if s.name == "dncgate_decisions_total"]
    assert {s.labels["tenant"] for s in totals} == {"unknown", "watch"}  # "default!" is no "default", though
    assert sum(s.value for s in totals if s.labels["tenant"] == "unknown") == 301  # its safe name is


def test_an_audit_records_json_is_made_once_and_is_its_fields_alone() -> None:
    import dataclasses
    import json

    from dncgate.audit_record import RECORD_KEYS, AuditRecord

    record = AuditRecord(decision_id="d1", at="2026-12-04T01:00:00.000000+00:00", tenant="t", door="agi",
                         account="", trunk="", caller_id="1", dialled="2015550100", callee="+12015550100",
                         purpose="marketing", category=None, verdict="allow", outcome="allow",
                         reason="allowed_clear", list_name=None, list_version=None, mode="enforce",
                         sip_code=None, latency_us=5)
    text = record.to_json()
    assert record.to_json() is text
    assert list(json.loads(text)) == list(RECORD_KEYS) == list(record.as_dict())
    assert AuditRecord.from_json(text) == record
    assert dataclasses.replace(record, tenant="u").to_json() == text.replace('"tenant":"t"', '"tenant":"u"')


def test_with_list_age_is_dataclasses_replace_of_every_field() -> None:
    from dataclasses import replace
    from datetime import timedelta

    from dncgate.gate import with_list_age
    from dncgate.model import ConsentFact, ConsentStatus, ListHit, Restriction

    full = Facts(
        national=ListHit("national", "v1"), tenant_list=ListHit("tenant:own", "v2"),
        prefix_rule=ListHit("tenant:own", "v3", prefix="1900"), national_version="v1", tenant_version="v2",
        consent=ConsentFact(ConsentStatus.GRANTED, frozenset({"promo"})), declined_categories=frozenset({"*"}),
        subscriber_blocks_originator=True, originator_suspended=True,
        originator_restriction=Restriction(per_minute=3, originator="account:a"), originator_restricted=True,
        list_age=timedelta(days=1),
    )
    for facts in (Facts(), full):
        for age in (None, timedelta(0), timedelta(days=29)):
            assert with_list_age(facts, age) == replace(facts, list_age=age)
    assert with_list_age(full, timedelta(days=1)) is full
