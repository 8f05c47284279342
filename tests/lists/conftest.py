from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dncgate.store.protocol import ListStore
from tests.conftest import RedisServer, open_test_store


@pytest.fixture(params=["sqlite", "redis"])
async def any_store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[ListStore]:
    backend = await open_test_store(request.param, tmp_path, redis_server, retire_grace=0.2)
    try:
        yield backend
    finally:
        await backend.close()
