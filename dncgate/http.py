"""The gate's small HTTP side: ``/healthz`` (store reachable within a deadline, and every list a
tenant needs loaded) and ``/metrics``.

``/healthz`` also shows the call feeds' states (``"feeds"``); a feed that is down does not fail it:
the call path does not use the feeds. A list a tenant needs with no live version does (503,
``"lists": "missing"`` and the reason): that tenant's marketing calls are being refused.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web

from dncgate.acceptor import Acceptor
from dncgate.config_file import MAX_SESSIONS
from dncgate.metrics import GateMetrics
from dncgate.settings.schema import HttpServerSettings
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
    with one warning line, instead of a plain-text 400 and a traceback in the log; and closing a
    connection whose first request head is not complete within ``header_timeout`` seconds
    (aiohttp's own keep-alive timer closes one idle for ``keepalive_timeout`` after a response)."""

    def __init__(self, manager: web.Server, *, header_timeout: float, loop: asyncio.AbstractEventLoop,
                 **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._header_timeout = header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_deadline = asyncio.get_running_loop().call_later(self._header_timeout, self._head_too_late)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_deadline is not None and self._request_count > 0:  # the first head is complete
            self._head_deadline.cancel()
            self._head_deadline = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

    def _head_too_late(self) -> None:
        self._head_deadline = None
        if self._request_count == 0:
            log.debug("http.header_timeout", timeout_s=self._header_timeout)
            self.force_close()

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
    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.on_connection_lost: Callable[[], None] = _nothing  # the acceptor's release

    def __call__(self) -> web.RequestHandler:
        return _JsonErrorHandler(self, header_timeout=self.header_timeout, loop=self._loop, **self._kwargs)

    def connection_lost(self, handler: web.RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.on_connection_lost()


def _nothing() -> None:
    pass


class GateRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer errors raised before the app runs as JSON
    (``{"error": {"code", "message"}}``, one ``http.bad_request`` warning) and time out a request
    head that does not come. aiohttp has no public hook for those (aio-libs/aiohttp#3287): this
    overrides its protocol's ``handle_error`` and ``data_received``."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _JsonErrorServer(
            server.request_handler, request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation, loop=server._loop,
            header_timeout=self._header_timeout, **server._kwargs,
        )


class AcceptorSite(web.BaseSite):
    """A site on the gate's own :class:`~dncgate.acceptor.Acceptor`: at most ``max_connections``
    open at once (beyond, accepting pauses: the rest wait in the kernel's backlog), and accept
    errors backed off, not retried in a tight loop. ``tls``: HTTPS, each handshake within
    ``header_timeout``."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, max_connections: int,
                 backlog: int = 128, tls: ssl.SSLContext | None = None, label: str = "http") -> None:
        super().__init__(runner, backlog=backlog, ssl_context=tls)
        self._host, self._port, self._max_connections, self._label = host, port, max_connections, label
        self.acceptor: Acceptor | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.acceptor.port if self.acceptor else self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if not isinstance(server, _JsonErrorServer):
            raise TypeError("AcceptorSite needs the runner make_runner() builds")
        acceptor = Acceptor(self._label, server, self._host, self._port,
                            backlog=self._backlog, max_connections=self._max_connections, tls=self._ssl_context,
                            tls_handshake_timeout=server.header_timeout)
        server.on_connection_lost = acceptor.release
        await acceptor.start()
        self.acceptor = self._server = acceptor


def make_runner(app: web.Application, *, header_timeout: float, keepalive_timeout: float,
                **kwargs: Any) -> web.AppRunner:
    """The runner ``serve`` starts ``app`` with (``kwargs``: ``web.AppRunner``'s)."""
    return GateRunner(app, header_timeout=header_timeout, keepalive_timeout=keepalive_timeout, **kwargs)


async def serve_app(
    app: web.Application, host: str, port: int, *, max_connections: int, header_timeout: float,
    keepalive_timeout: float, tls: ssl.SSLContext | None = None, shutdown_timeout: float = 1.0, label: str = "http",
) -> tuple[web.AppRunner, int]:
    """``app`` listening with a connection cap, header and keep-alive timeouts (and JSON errors
    before the app runs); the runner (``cleanup()`` stops it) and the bound port."""
    runner = make_runner(app, header_timeout=header_timeout, keepalive_timeout=keepalive_timeout,
                         access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = AcceptorSite(runner, host, port, max_connections=max_connections, tls=tls, label=label)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    assert site.acceptor is not None
    return runner, site.acceptor.port


async def start_http(app: web.Application, settings: HttpServerSettings) -> tuple[web.AppRunner, int]:
    """``app`` listening as ``[http]`` says; the runner and the bound port."""
    return await serve_app(app, settings.host, settings.port, max_connections=settings.max_connections,
                           header_timeout=settings.header_timeout, keepalive_timeout=settings.keepalive_timeout)
