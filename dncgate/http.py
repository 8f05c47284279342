"""The gate's small HTTP side: ``/healthz`` (store reachable within a deadline, and every list a
tenant needs loaded) and ``/metrics``.

``/healthz`` also shows the call feeds' states (``"feeds"``); a feed that is down does not fail it:
the call path does not use the feeds. A list a tenant needs with no live version does (503,
``"lists": "missing"`` and the reason): that tenant's marketing calls are being refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web

from dncgate.config_file import MAX_SESSIONS
from dncgate.metrics import GateMetrics
from dncgate.store.errors import StoreError
from dncgate.store.protocol import ListStore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("dncgate.http")

HEALTH_DEADLINE = 0.5
_MONITORING = frozenset({"/healthz", "/metrics"})  # never counted against [http] max_sessions


def make_app(
    store: ListStore, metrics: GateMetrics, doors: dict[str, bool], *, max_requests: int = MAX_SESSIONS,
    feeds: Callable[[], Mapping[str, Any]] = dict, lists_missing: Callable[[], Awaitable[str]] | None = None,
) -> web.Application:
    """``/healthz`` and ``/metrics`` (the API adds ``/v1``); at most ``max_requests`` other requests in flight.
    ``lists_missing``: reads the store and says why the lists the tenants need are not all there
    ("" when they are); run by each health check within its deadline."""
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
        missing = ""
        try:
            async with asyncio.timeout(HEALTH_DEADLINE):
                await store.ping()
                if lists_missing is not None:
                    missing = await lists_missing()
        except (TimeoutError, StoreError) as exc:
            return web.json_response(
                {"status": "degraded", "store": "unavailable", "error": str(exc) or "timeout", "doors": doors,
                 "feeds": feeds()},
                status=503,
            )
        if missing:
            return web.json_response(
                {"status": "degraded", "store": "ok", "lists": "missing", "error": missing, "doors": doors,
                 "feeds": feeds()},
                status=503,
            )
        return web.json_response({"status": "ok", "store": "ok", "lists": "ok", "doors": doors, "feeds": feeds()})

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application(client_max_size=64 * 1024, middlewares=[limit])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app


class _JsonErrorHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, answering what fails before the app runs (an over-long
    request line or header, too many headers, bytes that are not HTTP) in the API's JSON error shape
    with one warning line, instead of a plain-text 400 and a traceback in the log."""

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("http.internal_error", status=status, path=request.path, error=repr(exc), exc_info=exc)
            text, code = "internal error (logged)", "internal_error"
        else:
            reason = getattr(exc, "message", None) or message or HTTPStatus(status).phrase
            text, code = str(reason).strip().splitlines()[0][:200], "bad_request" if status == 400 else "http_error"
            log.warning("http.bad_request", status=status, remote=request.remote, error=text,
                        kind=type(exc).__name__ if exc is not None else None)
        if request.writer.output_size > 0:  # a response is under way: the connection is all that can go
            raise ConnectionError("response already started, cannot send the error")
        response = web.json_response({"error": {"code": code, "message": text}}, status=status)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class GateRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer errors raised before the app runs as JSON
    (``{"error": {"code", "message"}}``, one ``http.bad_request`` warning). aiohttp has no public
    hook for those (aio-libs/aiohttp#3287): this overrides its protocol's ``handle_error``."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _JsonErrorServer(
            server.request_handler, request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation, loop=server._loop, **server._kwargs,
        )


def make_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """The runner ``serve`` starts ``app`` with (``kwargs``: ``web.AppRunner``'s)."""
    return GateRunner(app, **kwargs)
