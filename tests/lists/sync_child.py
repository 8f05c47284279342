"""Run one sync in this process and print 'progress N' as the store loads (the kill -9 test's victim)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from dncgate.lists.sources import DropDirSource
from dncgate.lists.sync import Syncer, SyncJob
from dncgate.store.protocol import ListStore


async def main(backend: str, target: str, drop: str, workdir: str) -> None:
    store: ListStore
    if backend == "sqlite":
        from dncgate.store.sqlite import SqliteListStore

        store = SqliteListStore(target)
    else:
        from dncgate.store.redis import RedisListStore, RedisSettings

        store = await RedisListStore.connect(RedisSettings(url=target, load_batch=20_000))

    def progress(n: int, _total: int) -> None:
        print(f"progress {n}", flush=True)

    try:
        await Syncer(store, DropDirSource(Path(drop)), SyncJob(workdir=Path(workdir))).sync_once(progress=progress)
        print("done", flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
