"""The HTTP side's request limit ([http] max_sessions) and max_list_age_days' range."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dncgate.http import make_app
from dncgate.metrics import GateMetrics
from dncgate.settings import ConfigError, load


class Store:
    async def ping(self) -> None:  # /healthz's only use of the store
        return None


async def test_requests_beyond_the_limit_get_a_503_busy_but_monitoring_still_answers() -> None:
    release = asyncio.Event()
    waiting = 0

    async def slow(_: web.Request) -> web.Response:  # stands in for an API request that takes its time
        nonlocal waiting
        waiting += 1
        await release.wait()
        return web.json_response({})

    app = make_app(Store(), GateMetrics(), {"agi": True, "esl": False}, max_requests=2)  # type: ignore[arg-type]
    app.router.add_get("/v1/slow", slow)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        first = [asyncio.create_task(client.get("/v1/slow")) for _ in range(2)]
        async with asyncio.timeout(30):
            while waiting < 2:  # noqa: ASYNC110 - polling the handler's counter
                await asyncio.sleep(0.01)
        busy = await client.get("/v1/slow")
        assert busy.status == 503
        assert (await busy.json())["error"]["code"] == "busy"
        assert busy.headers["Retry-After"] == "1"
        # The health check and the metrics are never turned away by load.
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/metrics")).status == 200
        release.set()
        assert [r.status for r in await asyncio.gather(*first)] == [200, 200]
        assert waiting == 2  # the refused request never reached its handler


def test_a_large_max_list_age_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[tenants.default]\nmax_list_age_days = 36500\n")  # "never alarm", as configs have it
    assert load(path, environ={}).tenants["default"].max_list_age.days == 36500


def test_the_http_limit_comes_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[http]\nmax_sessions = 7\n")
    assert load(path, environ={}).http.max_sessions == 7


@pytest.mark.parametrize("days", [0, 1_000_000, 1_000_000_000])
def test_max_list_age_days_out_of_range_is_a_config_error(tmp_path: Path, days: int) -> None:
    path = tmp_path / "g.toml"
    path.write_text(f"[tenants.default]\nmax_list_age_days = {days}\n")
    with pytest.raises(ConfigError, match="max_list_age_days"):
        load(path, environ={})
