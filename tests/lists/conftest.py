from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dncgate.store.protocol import ListStore
from tests.conftest import RedisServer


@pytest.fixture(params=["sqlite", "redis"])
async def any_store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[ListStore]:
    backend: ListStore
    if request.param == "sqlite":
        from dncgate.store.sqlite import SqliteListStore

        backend = SqliteListStore(tmp_path / "dncgate.sqlite3")
    else:
        from dncgate.store.redis import RedisListStore, RedisSettings

        redis_server.flush()
        backend = await RedisListStore.connect(RedisSettings(url=redis_server.url, retire_grace=0.2))
    try:
        yield backend
    finally:
        await backend.close()
