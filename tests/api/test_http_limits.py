"""The HTTP side's request limit ([http] max_sessions) and max_list_age_days' range."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dncgate.config import ConfigError, load
from dncgate.http import make_app
from dncgate.metrics import GateMetrics


class StallingStore:
    """A store whose ping waits until released (only ping is used by /healthz)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.waiting = 0

    async def ping(self) -> None:
        self.waiting += 1
        await self.release.wait()


async def test_requests_beyond_the_limit_get_a_503_busy() -> None:
    store = StallingStore()
    app = make_app(store, GateMetrics(), {"agi": True, "esl": False}, max_requests=2)  # type: ignore[arg-type]
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        first = [asyncio.create_task(client.get("/healthz")) for _ in range(2)]
        async with asyncio.timeout(3):
            while store.waiting < 2:  # noqa: ASYNC110 - polling the fake store
                await asyncio.sleep(0.01)
        busy = await client.get("/metrics")
        assert busy.status == 503
        assert (await busy.json())["error"]["code"] == "busy"
        assert busy.headers["Retry-After"] == "1"
        store.release.set()
        assert [r.status for r in await asyncio.gather(*first)] == [200, 200]
        assert (await client.get("/metrics")).status == 200  # the slots are free again


def test_the_http_limit_comes_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[http]\nmax_sessions = 7\n")
    assert load(path, environ={}).http.max_sessions == 7


@pytest.mark.parametrize("days", [0, 3661, 1_000_000_000])
def test_max_list_age_days_out_of_range_is_a_config_error(tmp_path: Path, days: int) -> None:
    path = tmp_path / "g.toml"
    path.write_text(f"[tenants.default]\nmax_list_age_days = {days}\n")
    with pytest.raises(ConfigError, match="max_list_age_days"):
        load(path, environ={})
