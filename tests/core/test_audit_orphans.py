"""Audit spools no process owns any more (a worker slot that is gone) are adopted before a gate opens its own.

``dncgate.worker.orphan_spools`` names them, ``dncgate.audit_spool.adopt_segments`` renames their
segments into the gate's own spool under both locks; the gate's sink then replays them once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from dncgate.audit import AuditSink
from dncgate.audit_spool import AuditSpool, SpoolError, adopt_segments
from dncgate.service import _adopt_orphan_spools
from dncgate.settings import Settings, load
from dncgate.store.sqlite import SqliteListStore
from dncgate.worker import WorkerRole, orphan_spools
from tests.core.test_audit_spool import drained, record, spooled_ids, stored_ids

MAX_BYTES = 1 << 20


def segment(directory: Path, number: int, *ids: int) -> Path:
    """A segment a killed gate left: one record line per id."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-{number}.jsonl"
    path.write_text("".join(record(i).to_json() + "\n" for i in ids))
    return path


def segment_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("audit-*.jsonl"))


async def test_adopted_records_are_replayed_once_by_the_adopting_spool(tmp_path: Path) -> None:
    own, orphan = tmp_path / "worker-0", tmp_path / "worker-3"
    segment(own, 1, 1, 2)
    segment(orphan, 1, 3)
    segment(orphan, 2, 4, 5)
    with capture_logs() as logs:
        assert adopt_segments(orphan, own) == 2
    assert not logs
    assert segment_names(orphan) == []
    assert sorted(spooled_ids(own)) == ["id1", "id2", "id3", "id4", "id5"]

    store = SqliteListStore(tmp_path / "gate.sqlite3")
    spool = AuditSpool.open(own, max_bytes=MAX_BYTES)
    sink = AuditSink(store, spool=spool)
    sink.start()
    try:
        await drained(sink, 5)
        assert sink.replayed == 5
    finally:
        await sink.close(timeout=10)
        await spool.close()
    assert sorted(await stored_ids(store)) == ["id1", "id2", "id3", "id4", "id5"]
    await store.close()
    assert adopt_segments(orphan, own) == 0  # nothing left to adopt, nothing replayed again
    assert spooled_ids(own) == []


def test_adopted_segments_never_take_an_existing_name(tmp_path: Path) -> None:
    own, orphan = tmp_path / "worker-1", tmp_path / "worker-2"
    kept = {segment(own, 1, 1).name: (own / "audit-1.jsonl").read_bytes(),
            segment(own, 7, 2).name: (own / "audit-7.jsonl").read_bytes()}
    moved = [segment(orphan, 1, 3).read_bytes(), segment(orphan, 2, 4).read_bytes()]
    assert adopt_segments(orphan, own) == 2
    assert segment_names(own) == ["audit-1.jsonl", "audit-7.jsonl", "audit-8.jsonl", "audit-9.jsonl"]
    assert {name: (own / name).read_bytes() for name in kept} == kept
    assert [(own / name).read_bytes() for name in ("audit-8.jsonl", "audit-9.jsonl")] == moved


async def test_an_orphan_held_by_a_running_gate_is_left_alone(tmp_path: Path) -> None:
    own, orphan = tmp_path / "worker-0", tmp_path / "worker-2"
    segment(orphan, 1, 1)
    running = AuditSpool.open(orphan, max_bytes=MAX_BYTES)  # a live worker in the rolling restart's slot
    try:
        with capture_logs() as logs:
            assert adopt_segments(orphan, own) is None
        assert [e["event"] for e in logs] == ["audit.orphan_spool_busy"]
        assert segment_names(orphan) == ["audit-1.jsonl", "audit-2.jsonl"]
        assert segment_names(own) == []
    finally:
        await running.close()


async def test_adopting_into_a_spool_another_gate_holds_is_refused(tmp_path: Path) -> None:
    own, orphan = tmp_path / "worker-0", tmp_path / "worker-2"
    segment(orphan, 1, 1)
    running = AuditSpool.open(own, max_bytes=MAX_BYTES)
    try:
        with pytest.raises(SpoolError, match="in use by another dncgate serve"):
            adopt_segments(orphan, own)
        assert segment_names(orphan) == ["audit-1.jsonl"]
    finally:
        await running.close()


def test_orphans_are_the_slots_the_configuration_no_longer_has(tmp_path: Path) -> None:
    for slot in (0, 1, 2, 3, 12):
        (tmp_path / f"worker-{slot}").mkdir()
    (tmp_path / "worker-x").mkdir()
    (tmp_path / "worker-5").write_text("not a spool")
    def spools(*slots: int) -> list[Path]:
        return [tmp_path / f"worker-{slot}" for slot in slots]

    assert orphan_spools(tmp_path, WorkerRole(0, None), 2) == [tmp_path, *spools(2, 3, 12)]  # and a one-process spool
    assert orphan_spools(tmp_path, WorkerRole(2, None), 2) == [tmp_path, *spools(3, 12)]  # never its own
    assert orphan_spools(tmp_path, None, 1) == spools(0, 1, 2, 3, 12)
    assert orphan_spools(tmp_path / "missing", None, 1) == []


def spool_config(tmp_path: Path) -> Settings:
    config = tmp_path / "dncgate.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "gate.sqlite3"}"\n[audit]\nspool_dir = "{tmp_path / "spool"}"\n')
    return load(config, {})


def test_a_one_process_serve_adopts_the_workers_spools_and_logs_it(tmp_path: Path) -> None:
    config = spool_config(tmp_path)
    segment(tmp_path / "spool" / "worker-0", 1, 1)
    segment(tmp_path / "spool" / "worker-1", 4, 2)
    with capture_logs() as logs:
        _adopt_orphan_spools(config, None)
    assert [(e["event"], e["orphan"], e["segments"]) for e in logs] == [
        ("audit.orphan_spool_adopted", str(tmp_path / "spool" / f"worker-{slot}"), 1) for slot in (0, 1)]
    assert sorted(spooled_ids(tmp_path / "spool")) == ["id1", "id2"]


async def test_a_spool_that_cannot_be_adopted_is_logged_and_kept(tmp_path: Path) -> None:
    config = spool_config(tmp_path)
    segment(tmp_path / "spool" / "worker-0", 1, 1)
    running = AuditSpool.open(tmp_path / "spool", max_bytes=MAX_BYTES)  # another gate on the same spool
    try:
        with capture_logs() as logs:
            _adopt_orphan_spools(config, None)
    finally:
        await running.close()
    assert [e["event"] for e in logs] == ["audit.orphan_spool_failed"]
    assert "in use by another dncgate serve" in logs[0]["error"]
    assert segment_names(tmp_path / "spool" / "worker-0") == ["audit-1.jsonl"]
