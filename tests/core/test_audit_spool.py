"""The audit's write-ahead spool: appended before the verdict, replayed at start, released once stored."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from dncgate.audit import AuditSink
from dncgate.audit_record import AuditRecord
from dncgate.audit_spool import AuditSpool, SpoolError, open_spool
from dncgate.gate import CheckRequest, Gate
from dncgate.model import TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.settings import ConfigError, load
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import TEST_STORE_DEADLINE

TENANTS = {"default": TenantPolicy(name="default", dial_plan=DialPlan(region="CN"))}
LOG = structlog.get_logger("test")


def record(i: int) -> AuditRecord:
    return AuditRecord(
        decision_id=f"id{i}", at="2026-11-28T00:00:00+00:00", tenant="t", door="agi", account="", trunk="",
        caller_id="", dialled="2125551234", callee="+12125551234", purpose="marketing", category=None,
        verdict="reject", outcome="reject", reason="national_dnc", list_name="national", list_version="1",
        mode="enforce", sip_code=607, latency_us=1)


def crash(spool: AuditSpool) -> None:
    """What the kernel does at kill -9: the descriptors close, nothing else happens."""
    os.close(spool._fd)
    os.close(spool._lock_fd)
    spool._fd = spool._lock_fd = -1


def spooled_ids(directory: Path) -> list[str]:
    return [json.loads(line)["decision_id"] for p in sorted(directory.glob("audit-*.jsonl"))
            for line in p.read_text().splitlines()]


async def stored_ids(store: SqliteListStore) -> list[str]:
    return [r.decision_id async for r in store.audit_export()]


async def drained(sink: AuditSink, queued: int) -> None:
    """Until the sink has written ``queued`` records (bounded: the writer needs a few loop turns)."""
    for _ in range(10_000):
        if sink.written >= queued:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"the sink wrote {sink.written} of {queued}")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteListStore]:
    backend = SqliteListStore(tmp_path / "gate.sqlite3")
    try:
        yield backend
    finally:
        await backend.close()


async def test_the_record_is_spooled_before_check_returns(tmp_path: Path, store: SqliteListStore) -> None:
    spool = AuditSpool.open(tmp_path / "spool", max_bytes=1 << 20)
    sink = AuditSink(store, spool=spool)  # not started: nothing reaches the store
    gate = Gate(TENANTS, store, sink, store_deadline=TEST_STORE_DEADLINE)
    result = await gate.check(CheckRequest(dialled="13800138000", door="agi"), LOG, defer=lambda _: None)
    assert spooled_ids(tmp_path / "spool") == [result.decision_id]  # before the door sends the verdict
    crash(spool)


async def test_a_killed_gate_s_records_are_replayed_once_at_start(tmp_path: Path, store: SqliteListStore) -> None:
    directory = tmp_path / "spool"
    first = AuditSpool.open(directory, max_bytes=1 << 20)
    sink = AuditSink(store, spool=first, linger=0)
    sink.start()
    for i in range(3):
        sink.submit(record(i))
    await drained(sink, 3)  # in the store, and the spool released them
    for i in range(3, 6):
        first.append(record(i))  # spooled, never written: the process dies here
    first.append(record(2))  # and one the store already has (a batch written just before the kill)
    crash(sink._spool)  # type: ignore[arg-type]
    sink._spool = None
    await sink.close()
    assert spooled_ids(directory) == ["id3", "id4", "id5", "id2"]

    second = AuditSpool.open(directory, max_bytes=1 << 20)
    restarted = AuditSink(store, spool=second, linger=0)
    with capture_logs() as logs:
        restarted.start()
        await drained(restarted, 4)
        await restarted.close()
    assert await stored_ids(store) == [f"id{i}" for i in range(6)]  # none twice
    assert restarted.replayed == 4
    assert [e["records"] for e in logs if e["event"] == "audit.spool_replayed"] == [4]
    assert spooled_ids(directory) == []  # released once the store has them


async def test_written_records_are_truncated_and_rotated_segments_deleted(tmp_path: Path,
                                                                          store: SqliteListStore) -> None:
    directory = tmp_path / "spool"
    spool = AuditSpool.open(directory, max_bytes=1 << 20, segment_bytes=1000)  # ~3 records a segment
    sink = AuditSink(store, spool=spool, linger=0)
    sink.start()
    for i in range(20):
        sink.submit(record(i))
    assert len(list(directory.glob("audit-*.jsonl"))) > 3  # rotated
    await drained(sink, 20)
    assert spooled_ids(directory) == []
    assert len(list(directory.glob("audit-*.jsonl"))) == 1  # the live one, truncated
    await sink.close()
    assert list(directory.glob("audit-*.jsonl")) == []
    assert await stored_ids(store) == [f"id{i}" for i in range(20)]


async def test_a_full_spool_says_so_once_and_the_records_still_reach_the_store(
    tmp_path: Path, store: SqliteListStore,
) -> None:
    spool = AuditSpool.open(tmp_path / "spool", max_bytes=1 << 20)
    spool.max_bytes = 1500  # three records or so (the config's floor is 1 MiB)
    sink = AuditSink(store, spool=spool)  # not started: the store is "down"
    with capture_logs() as logs:
        for i in range(10):
            sink.submit(record(i))
    full = [e for e in logs if e["event"] == "audit.spool_full"]
    assert len(full) == 1
    assert full[0]["log_level"] == "error"
    assert spool.unspooled == 10 - len(spooled_ids(tmp_path / "spool")) > 0
    assert spool.size <= 1500
    with capture_logs() as logs:
        sink.start()
        await drained(sink, 10)  # the queue still had all of them
        sink.submit(record(10))  # room again
        await drained(sink, 11)
        await sink.close()
    assert [e["event"] for e in logs if e["event"].startswith("audit.spool")] == ["audit.spool_resumed"]
    assert await stored_ids(store) == [f"id{i}" for i in range(11)]


async def test_what_the_store_did_not_take_stays_spooled_for_the_next_start(tmp_path: Path) -> None:
    class DownStore(SqliteListStore):
        async def append_audit(self, records: object) -> None:
            from dncgate.store.errors import StoreUnavailable

            raise StoreUnavailable("down")

    down = DownStore(tmp_path / "gate.sqlite3")
    spool = AuditSpool.open(tmp_path / "spool", max_bytes=1 << 20)
    sink = AuditSink(down, spool=spool, retry_delay=0.001)
    sink.start()
    for i in range(3):
        sink.submit(record(i))
    with capture_logs() as logs:
        await sink.close(timeout=0.01)
    await down.close()
    assert {e["spooled"] for e in logs if e["event"] == "audit.unwritten_at_shutdown"} == {True}
    assert spooled_ids(tmp_path / "spool") == ["id0", "id1", "id2"]


async def test_damaged_lines_are_skipped_and_counted(tmp_path: Path, store: SqliteListStore) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    good = record(1).to_json()
    (directory / "audit-7.jsonl").write_bytes(
        b"not json\n" + good.encode() + b"\n" + b"1" * 100_000 + b"\n" + b'{"decision_id": "x"}\n'
        + record(2).to_json().encode() + b"\n" + b'{"decision_id":"torn'  # the last write never finished
    )
    spool = AuditSpool.open(directory, max_bytes=1 << 20)
    sink = AuditSink(store, spool=spool)
    with capture_logs() as logs:
        sink.start()
        await drained(sink, 2)
        await sink.close()
    assert await stored_ids(store) == ["id1", "id2"]
    assert [e["skipped"] for e in logs if e["event"] == "audit.spool_damaged_lines"] == [4]
    assert not (directory / "audit-7.jsonl").exists()


async def test_one_gate_per_spool(tmp_path: Path) -> None:
    spool = AuditSpool.open(tmp_path / "spool", max_bytes=1 << 20)
    with pytest.raises(SpoolError, match="in use by another dncgate serve"):
        AuditSpool.open(tmp_path / "spool", max_bytes=1 << 20)
    await spool.close()
    await (AuditSpool.open(tmp_path / "spool", max_bytes=1 << 20)).close()  # free again
    with pytest.raises(SpoolError, match="No such file or directory"):
        AuditSpool.open(tmp_path / "missing" / "spool", max_bytes=1 << 20)  # parents are not created


async def test_the_group_commit_syncs_what_was_appended(tmp_path: Path) -> None:
    spool = AuditSpool.open(tmp_path / "spool", max_bytes=1 << 20, segment_bytes=400)
    for i in range(3):
        spool.append(record(i))  # rotates: a retired descriptor waits for the commit
    assert spool._retired
    await spool.commit()
    assert not spool._retired
    assert not spool._dirty
    await spool.close()


def test_spool_settings(tmp_path: Path) -> None:
    config = load(None, environ={"DNCGATE_STORE__PATH": str(tmp_path / "x.sqlite3")})
    assert config.audit_spool is not None
    assert config.audit_spool.directory == tmp_path / "x.sqlite3.audit-spool"  # next to the store
    assert config.audit_spool.max_bytes == 256 << 20
    assert config.audit_spool.sync_interval == 0.1
    redis = load(None, environ={"DNCGATE_STORE__BACKEND": "redis"})
    assert redis.audit_spool is not None
    assert redis.audit_spool.directory == Path("dncgate-audit-spool")
    off = load(None, environ={"DNCGATE_AUDIT__SPOOL_DIR": ""})
    assert off.audit_spool is None
    with capture_logs() as logs:
        assert open_spool(off.audit_spool) is None
    assert [e["event"] for e in logs] == ["audit.spool_disabled"]
    for key, value in (("SPOOL_MAX_BYTES", "1000"), ("SPOOL_SYNC_MS", "0"), ("SPOOL_MAX_BYTES", "lots")):
        with pytest.raises(ConfigError, match=key.lower()):
            load(None, environ={f"DNCGATE_AUDIT__{key}": value})
