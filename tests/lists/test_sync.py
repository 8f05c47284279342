"""The sync engine on both stores, fed from a drop directory: order, gaps, guards, integrity, state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dncgate.lists.manifest import load_public_key, public_key_of
from dncgate.lists.sources import DropDirSource
from dncgate.lists.sync import Syncer, SyncError, SyncJob
from dncgate.store.protocol import ListStore
from tests.lists.sync_helpers import numbers, write_delta, write_manifest, write_snapshot


async def _listed(store: ListStore, items: list[int]) -> list[bool]:
    return [(await store.facts("t", n)).national is not None for n in items]


def _syncer(store: ListStore, drop: Path, tmp_path: Path, **settings: object) -> Syncer:
    return Syncer(store, DropDirSource(drop), SyncJob(workdir=tmp_path / "work", **settings))  # type: ignore[arg-type]


async def test_snapshot_then_deltas_in_order_and_files_moved_aside(any_store: ListStore, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    snap = write_snapshot(drop, 10, numbers(0, 100))
    d11 = write_delta(drop, 11, adds=numbers(100, 5), removes=numbers(0, 2))
    d12 = write_delta(drop, 12, adds=numbers(0, 1), removes=numbers(100, 1))
    write_manifest(drop, snap, [d12, d11], name="0001.manifest.json")
    report = await _syncer(any_store, drop, tmp_path).sync_once()
    assert (report.outcome, report.snapshot, report.deltas, report.sequence) == ("updated", 10, [11, 12], 12)
    assert await _listed(any_store, numbers(0, 3)) == [True, False, True]  # removed in 11, back in 12
    assert await _listed(any_store, numbers(100, 2)) == [False, True]
    state = await any_store.sync_state("national")
    assert state["sequence"] == "12"
    assert sorted(p.name for p in (drop / "processed").iterdir()) == sorted(
        ["0001.manifest.json", snap.file, d11.file, d12.file])
    assert not list(drop.glob("*.manifest.json"))
    # Nothing new dropped: that confirms nothing (issue 11 item 3: the job filling the directory
    # may have died), so the list's age keeps growing and staleness can still fire.
    old = {**state, "fresh_at": "2020-01-01T00:00:00+00:00", "checked_at": "2020-01-01T00:00:00+00:00"}
    await any_store.set_sync_state("national", old)
    again = await _syncer(any_store, drop, tmp_path).sync_once()
    assert again.outcome == "nothing_new"
    after = await any_store.sync_state("national")
    assert after["sequence"] == "12"
    assert after["fresh_at"] == "2020-01-01T00:00:00+00:00"
    assert after["checked_at"] > "2026"  # it was asked, and said nothing


async def test_deltas_already_applied_are_skipped_and_a_gap_loads_the_snapshot(
    any_store: ListStore, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_manifest(drop, write_snapshot(drop, 5, numbers(0, 50)), [write_delta(drop, 6, adds=numbers(50, 1))],
                   name="0001.manifest.json")
    syncer = _syncer(any_store, drop, tmp_path)
    await syncer.sync_once()
    # The platform re-sends delta 6 with 7: 6 is not applied twice (its add was removed by hand meanwhile).
    await any_store.remove_numbers("national", numbers(50, 1))
    write_manifest(drop, None, [write_delta(drop, 6, adds=numbers(50, 1)), write_delta(drop, 7, adds=numbers(60, 1))],
                   name="0002.manifest.json")
    report = await syncer.sync_once()
    assert report.deltas == [7]
    assert await _listed(any_store, [numbers(50, 1)[0], numbers(60, 1)[0]]) == [False, True]
    # Delta 9 without 8: a gap. With a snapshot at 9 on offer, the snapshot is loaded instead.
    write_manifest(drop, write_snapshot(drop, 9, numbers(0, 49)), [write_delta(drop, 9, adds=numbers(70, 1))],
                   name="0003.manifest.json")
    report = await syncer.sync_once()
    assert (report.snapshot, report.deltas, report.sequence) == (9, [], 9)
    assert await _listed(any_store, [numbers(60, 1)[0], numbers(48, 1)[0]]) == [False, True]
    # A gap and no snapshot: refused, the list stays at 9, the drop moves to rejected/.
    write_manifest(drop, None, [write_delta(drop, 11, adds=numbers(80, 1))], name="0004.manifest.json")
    with pytest.raises(SyncError) as caught:
        await syncer.sync_once()
    assert caught.value.cause == "gap"
    assert (await any_store.sync_state("national"))["sequence"] == "9"
    assert (drop / "rejected" / "0004.manifest.json").exists()


async def test_digest_mismatch_applies_nothing(any_store: ListStore, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    await any_store.replace_list("national", numbers(0, 10))
    snap = write_snapshot(drop, 3, numbers(0, 20))
    delta = write_delta(drop, 4, adds=numbers(500, 1))
    write_manifest(drop, snap, [delta], name="a.manifest.json")
    (drop / delta.file).write_text("number,action\n+12015550999,add\n")  # tampered after the manifest
    with pytest.raises(SyncError) as caught:
        await _syncer(any_store, drop, tmp_path).sync_once()
    assert caught.value.cause == "integrity"
    assert await _listed(any_store, [numbers(15, 1)[0], 12015550999]) == [False, False]
    assert (drop / "rejected" / delta.file).exists()


async def test_shrink_is_refused_unless_forced(any_store: ListStore, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 1000)), name="1.manifest.json")
    syncer = _syncer(any_store, drop, tmp_path)
    await syncer.sync_once()
    write_manifest(drop, write_snapshot(drop, 2, numbers(0, 950)), name="2.manifest.json")  # -5.0%: allowed
    assert (await syncer.sync_once()).snapshot == 2
    write_manifest(drop, write_snapshot(drop, 3, numbers(0, 900)), name="3.manifest.json")  # -5.3%: refused
    with pytest.raises(SyncError) as caught:
        await syncer.sync_once()
    assert caught.value.cause == "shrink"
    assert await _listed(any_store, numbers(940, 1)) == [True]
    write_manifest(drop, write_snapshot(drop, 3, numbers(0, 900)), name="4.manifest.json")
    report = await syncer.sync_once(force=True)
    assert (report.snapshot, report.loaded) == (3, 900)
    assert await _listed(any_store, numbers(940, 1)) == [False]


async def test_signed_manifests_only_when_a_key_is_configured(any_store: ListStore, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    private = os.urandom(32)
    key = load_public_key(public_key_of(private))
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 10)), name="1.manifest.json")
    syncer = _syncer(any_store, drop, tmp_path, public_key=key)
    with pytest.raises(SyncError, match="not signed") as caught:
        await syncer.sync_once()
    assert caught.value.cause == "signature"
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 10)), name="2.manifest.json", private_key=os.urandom(32))
    with pytest.raises(SyncError, match="does not verify"):
        await syncer.sync_once()
    assert await _listed(any_store, numbers(0, 1)) == [False]
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 10)), name="3.manifest.json", private_key=private)
    assert (await syncer.sync_once()).snapshot == 1
    assert await _listed(any_store, numbers(0, 1)) == [True]


async def test_a_hand_load_makes_the_state_untrusted_and_the_next_sync_loads_the_snapshot(
    any_store: ListStore, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 100)), name="1.manifest.json")
    syncer = _syncer(any_store, drop, tmp_path)
    await syncer.sync_once()
    await any_store.replace_list("national", [*numbers(0, 100), 19995550000])  # someone loads a file by hand
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 100)), [write_delta(drop, 2, adds=numbers(200, 1))],
                   name="2.manifest.json")
    report = await syncer.sync_once()
    assert (report.snapshot, report.deltas) == (1, [2])
    assert await _listed(any_store, [19995550000, numbers(200, 1)[0]]) == [False, True]


async def test_manifest_for_another_list_or_malformed_is_refused(any_store: ListStore, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 10)), name="1.manifest.json", list_name="tenant:x")
    syncer = _syncer(any_store, drop, tmp_path)
    with pytest.raises(SyncError, match="for list 'tenant:x'"):
        await syncer.sync_once()
    (drop / "2.manifest.json").write_text('{"format_version": 1, "list": "national", "deltas": [{"file": "../x"}]}')
    with pytest.raises(SyncError) as caught:
        await syncer.sync_once()
    assert caught.value.cause == "manifest"


async def test_a_manifest_already_applied_read_again_does_not_refresh_the_age(
    any_store: ListStore, tmp_path: Path
) -> None:
    """Issue 11 item 3: the processed manifest copied back into the drop directory (what a stuck
    fetch job does) holds the sequence already applied: it confirms nothing, so fresh_at stays."""
    drop = tmp_path / "drop"
    drop.mkdir()
    manifest = write_manifest(drop, write_snapshot(drop, 10, numbers(0, 20)), name="0001.manifest.json")
    syncer = _syncer(any_store, drop, tmp_path)
    assert (await syncer.sync_once()).snapshot == 10
    state = await any_store.sync_state("national")
    await any_store.set_sync_state("national", {**state, "fresh_at": "2020-01-01T00:00:00+00:00"})
    (drop / manifest.name).write_bytes((drop / "processed" / manifest.name).read_bytes())
    report = await syncer.sync_once()
    assert (report.outcome, report.snapshot, report.deltas, report.sequence) == ("nothing_new", None, [], 10)
    after = await any_store.sync_state("national")
    assert (after["sequence"], after["fresh_at"]) == ("10", "2020-01-01T00:00:00+00:00")
    assert after["checked_at"] > "2026"
    assert (drop / "processed" / manifest.name).exists()
    assert not list(drop.glob("*.manifest.json"))
    # A new delta is a positive confirmation: the age is refreshed.
    write_manifest(drop, None, [write_delta(drop, 11, adds=numbers(50, 1))], name="0002.manifest.json")
    assert (await syncer.sync_once()).deltas == [11]
    assert (await any_store.sync_state("national"))["fresh_at"] > "2026"
