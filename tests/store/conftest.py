from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dncgate.store.protocol import ListStore
from tests.conftest import RedisServer, open_test_store


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[ListStore]:
    backend = await open_test_store(request.param, tmp_path, redis_server)
    try:
        yield backend
    finally:
        await backend.close()
