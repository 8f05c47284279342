"""The periodic sync inside ``serve`` runs in a child process: the serving loop keeps answering."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from dncgate.lists.freshness import ListFreshness
from dncgate.lists.runner import start_services, stop_services, sync_command
from dncgate.lists.sync import FAILURE_CAUSES, SyncReport, cause_of_exit, exit_code_of
from dncgate.settings import load
from dncgate.store.sqlite import SqliteListStore
from tests.lists.sync_helpers import numbers, write_manifest, write_snapshot


class RecordingObserver:
    def __init__(self) -> None:
        self.succeeded_with: list[tuple[str, int | None, int | None]] = []
        self.failures: list[tuple[str, str]] = []

    def succeeded(self, list_name: str, report: SyncReport, count: int | None) -> None:
        self.succeeded_with.append((list_name, report.sequence, count))

    def failed(self, list_name: str, cause: str) -> None:
        self.failures.append((list_name, cause))


def config_file(tmp_path: Path, drop: Path) -> Path:
    path = tmp_path / "dncgate.toml"
    path.write_text(f"""
[store]
path = "{tmp_path / 'gate.sqlite3'}"

[sync]
enabled = true
source = "dir"
directory = "{drop}"
workdir = "{tmp_path / 'work'}"
interval_s = 3600

[tenants.default]
region = "US"
""")
    return path


async def test_periodic_sync_loads_in_a_child_while_the_loop_stays_responsive(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 200_000)), name="0001.manifest.json")
    config = load(config_file(tmp_path, drop), environ={})
    started = datetime.now(UTC)
    assert config.sync.isolate
    assert sync_command(config)[-6:] == ["--config", str(config.path), "lists", "sync", "--nice", "10"]
    store = SqliteListStore(config.store.path)
    observer = RecordingObserver()
    services = await start_services(config, store, ListFreshness(store, config.tenants), observer)
    try:
        # While the child parses and loads, this loop is never held for long.
        # The load runs in a child process (sync_command above); how long the loop stalls meanwhile
        # is a speed figure for bench/, not a bound a busy machine can break here.
        async with asyncio.timeout(60):
            while not await _loaded(store):  # noqa: ASYNC110 - polling what the child wrote
                await asyncio.sleep(0.01)
        assert (await store.sync_state("national"))["sequence"] == "1"
        assert (drop / "processed" / "0001.manifest.json").exists()
        async with asyncio.timeout(60):  # the parent hears of the child's end, then refreshes the age
            while services.freshness.age() is None or not observer.succeeded_with:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        age = services.freshness.age()
        assert age is not None
        fresh_at = services.freshness.fresh_at
        assert fresh_at is not None
        # refreshed by this test's sync, not left from before (stored to the second: compare so)
        assert fresh_at >= started.replace(microsecond=0)
        # The sync metrics hear of the child's success (sequence and size read back from the store).
        assert observer.succeeded_with == [("national", 1, 200_000)]
        assert observer.failures == []
    finally:
        await stop_services(services)
        await store.close()


async def _loaded(store: SqliteListStore) -> bool:
    """The child flipped the list live, then recorded its sync state."""
    live = (await store.facts("default", numbers(0, 1)[0])).national is not None
    return live and "sequence" in await store.sync_state("national")


def test_sync_exit_codes_carry_the_failure_cause() -> None:
    for cause in FAILURE_CAUSES:
        assert cause_of_exit(exit_code_of(cause)) == cause
    assert exit_code_of("something else") == 1
    assert [cause_of_exit(code) for code in (0, 1, 2, 9, 18, 137)] == [None] * 6


async def test_an_isolated_sync_that_fails_is_counted_by_its_cause(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "0001.manifest.json").write_text("{not json")  # the child fails with cause "manifest"
    config = load(config_file(tmp_path, drop), environ={})
    store = SqliteListStore(config.store.path)
    observer = RecordingObserver()
    services = await start_services(config, store, ListFreshness(store, config.tenants), observer)
    try:
        async with asyncio.timeout(60):
            while not observer.failures:  # noqa: ASYNC110 - polling what the parent reported
                await asyncio.sleep(0.05)
    finally:
        await stop_services(services)
        await store.close()
    assert observer.failures == [("national", "manifest")]
    assert observer.succeeded_with == []
