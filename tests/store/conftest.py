from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dncgate.store.protocol import ListStore
from tests.conftest import RedisServer, open_test_store
from tests.store.cluster_lab import RedisClusterLab, cluster_lab


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterLab]:
    """3 masters and 3 replicas on loopback, shared by the session's tests (flushed by each)."""
    lab = cluster_lab(tmp_path_factory.mktemp("redis-cluster"))
    yield lab
    lab.stop()


async def open_cluster_store(lab: RedisClusterLab) -> ListStore:
    from dncgate.store.redis import RedisListStore, RedisSettings

    lab.flush()
    return await RedisListStore.connect(RedisSettings(url=lab.url, cluster=True))


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[ListStore]:
    if request.param == "redis-cluster":
        backend = await open_cluster_store(request.getfixturevalue("redis_cluster"))
    else:
        backend = await open_test_store(request.param, tmp_path, redis_server)
    try:
        yield backend
    finally:
        await backend.close()
