"""The gate's small HTTP side: ``/healthz`` (store reachable within a deadline) and ``/metrics``."""

from __future__ import annotations

import asyncio

from aiohttp import web

from dncgate.metrics import GateMetrics
from dncgate.store.errors import StoreError
from dncgate.store.protocol import ListStore

HEALTH_DEADLINE = 0.5


def make_app(store: ListStore, metrics: GateMetrics, doors: dict[str, bool]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_DEADLINE):
                await store.ping()
        except (TimeoutError, StoreError) as exc:
            return web.json_response(
                {"status": "degraded", "store": "unavailable", "error": str(exc) or "timeout", "doors": doors},
                status=503,
            )
        return web.json_response({"status": "ok", "store": "ok", "doors": doors})

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app
