"""The gate's small HTTP side: ``/healthz`` (store reachable within a deadline) and ``/metrics``.

``/healthz`` also shows the call feeds' states (``"feeds"``); a feed that is down does not fail it:
the call path does not use the feeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from dncgate.metrics import GateMetrics
from dncgate.store.errors import StoreError
from dncgate.store.protocol import ListStore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("dncgate.http")

HEALTH_DEADLINE = 0.5
_MONITORING = frozenset({"/healthz", "/metrics"})  # never counted against [http] max_sessions


def make_app(
    store: ListStore, metrics: GateMetrics, doors: dict[str, bool], *, max_requests: int = 512,
    feeds: Callable[[], Mapping[str, Any]] = dict,
) -> web.Application:
    """``/healthz`` and ``/metrics`` (the API adds ``/v1``); at most ``max_requests`` other requests in flight."""
    in_flight = 0

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if request.path in _MONITORING:  # a busy gate must still answer its health check and metrics
            return await handler(request)
        if in_flight >= max_requests:
            log.warning("http.busy", path=request.path, in_flight=in_flight, max_requests=max_requests)
            return web.json_response(
                {"error": {"code": "busy", "message": f"more than {max_requests} requests in flight"}},
                status=503, headers={"Retry-After": "1"},
            )
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1

    async def healthz(_: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_DEADLINE):
                await store.ping()
        except (TimeoutError, StoreError) as exc:
            return web.json_response(
                {"status": "degraded", "store": "unavailable", "error": str(exc) or "timeout", "doors": doors,
                 "feeds": feeds()},
                status=503,
            )
        return web.json_response({"status": "ok", "store": "ok", "doors": doors, "feeds": feeds()})

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application(client_max_size=64 * 1024, middlewares=[limit])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app
