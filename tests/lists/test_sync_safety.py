"""A sync killed with SIGKILL mid-load leaves the previous version serving; decisions made while a
sync swaps versions are all correct; the old version's Redis keys are freed afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from dncgate.lists.sources import DropDirSource
from dncgate.lists.sync import Syncer, SyncJob
from dncgate.store.protocol import ListStore
from dncgate.store.redis import RedisListStore, RedisSettings
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import RedisServer, redis_test_settings
from tests.lists.sync_helpers import numbers, write_manifest, write_snapshot
from tests.polls import poll_until

ROOT = Path(__file__).parent.parent.parent


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_kill_9_mid_load_keeps_the_previous_version_and_the_next_sync_succeeds(
    backend: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    old, new = numbers(0, 1000), numbers(0, 600_000)
    store: ListStore
    if backend == "sqlite":
        target = str(tmp_path / "gate.sqlite3")
        store = SqliteListStore(target)
    else:
        redis_server.flush()
        target = redis_server.url
        store = await RedisListStore.connect(redis_test_settings(target))
    try:
        write_manifest(drop, write_snapshot(drop, 1, old), name="1.manifest.json")
        await Syncer(store, DropDirSource(drop), SyncJob(workdir=tmp_path / "w")).sync_once()
        live = (await store.facts("t", old[0])).national
        assert live is not None
        write_manifest(drop, write_snapshot(drop, 2, new), name="2.manifest.json")
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.lists.sync_child", backend, target, str(drop), str(tmp_path / "w"),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert child.stdout is not None
        line = b""
        async with asyncio.timeout(60):
            while not line.startswith(b"progress"):
                line = await child.stdout.readline()
                assert line, "the child ended before it started loading"
        os.kill(child.pid, signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
        # The previous version still answers, and nothing of the half-loaded one is visible.
        hit = (await store.facts("t", old[0])).national
        assert hit is not None
        assert hit.version == live.version
        assert (await store.facts("t", new[-1])).national is None
        assert (await store.sync_state("national"))["sequence"] == "1"
        # The drop was not consumed: the next sync loads it.
        report = await Syncer(store, DropDirSource(drop), SyncJob(workdir=tmp_path / "w")).sync_once()
        assert (report.snapshot, report.loaded) == (2, len(new))
        assert (await store.facts("t", new[-1])).national is not None
    finally:
        await store.close()


async def test_decisions_during_a_sync_swap_are_all_consistent(any_store: ListStore, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    first, second = set(numbers(0, 40_000)), set(numbers(20_000, 40_000))
    write_manifest(drop, write_snapshot(drop, 1, sorted(first)), name="1.manifest.json")
    syncer = Syncer(any_store, DropDirSource(drop), SyncJob(workdir=tmp_path / "w", max_shrink=1.0))
    await syncer.sync_once()
    v1 = (await any_store.facts("t", numbers(0, 1)[0])).national_version
    probes = numbers(0, 1) + numbers(30_000, 1) + numbers(59_999, 1)  # first only, both, second only
    seen: dict[str, int] = {}
    wrong: list[str] = []
    stop = asyncio.Event()

    async def decide_continuously() -> None:
        while not stop.is_set():
            for number in probes:
                facts = await any_store.facts("t", number)
                members = first if facts.national_version == v1 else second
                if (facts.national is not None) != (number in members):
                    wrong.append(f"{number} v{facts.national_version}")
                seen[facts.national_version] = seen.get(facts.national_version, 0) + 1

    write_manifest(drop, write_snapshot(drop, 2, sorted(second)), name="2.manifest.json")
    checkers = [asyncio.create_task(decide_continuously()) for _ in range(4)]
    # Decisions on both sides of the swap, by events, not by sleeping (issue 11 item 20).
    await poll_until(lambda: seen.get(v1, 0) > 0, "decisions before the swap")
    report = await syncer.sync_once()
    await poll_until(lambda: seen.get(report.version, 0) > 0, "decisions after the swap")
    stop.set()
    await asyncio.gather(*checkers)
    assert wrong == []
    assert set(seen) == {v1, report.version}  # decisions ran on both sides of the swap
    assert seen[v1] > 0
    assert seen[report.version] > 0


async def test_old_version_keys_are_freed_after_the_swap(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.flush()
    store = await RedisListStore.connect(RedisSettings(url=redis_server.url, retire_grace=0.1))
    client = aioredis.from_url(redis_server.url)
    drop = tmp_path / "drop"
    drop.mkdir()
    try:
        syncer = Syncer(store, DropDirSource(drop), SyncJob(workdir=tmp_path / "w"))
        write_manifest(drop, write_snapshot(drop, 1, numbers(0, 5000)), name="1.manifest.json")
        old = (await syncer.sync_once()).version
        assert [k async for k in client.scan_iter(f"dnc:{{national}}:v{old}:*")]
        write_manifest(drop, write_snapshot(drop, 2, numbers(0, 5000)), name="2.manifest.json")
        new = (await syncer.sync_once()).version
        await store.drain_cleanup()
        assert [k async for k in client.scan_iter(f"dnc:{{national}}:v{old}:*")] == []
        assert [k async for k in client.scan_iter(f"dnc:{{national}}:v{new}:*")]
    finally:
        await client.aclose()
        await store.close()
