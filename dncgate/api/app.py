"""Mount the ``/v1`` API on the gate's aiohttp application (same process, same event loop as the doors)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from dncgate.api import check, consents, enforcement, messages, subscribers
from dncgate.api.context import CONTEXT, ApiContext
from dncgate.api.errors import json_errors

SPEC = Path(__file__).with_name("openapi.json")


async def openapi(_: web.Request) -> web.Response:
    return web.Response(body=SPEC.read_bytes(), content_type="application/json")


def install_api(app: web.Application, context: ApiContext) -> None:
    app[CONTEXT] = context
    app.middlewares.append(json_errors)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/v1/check", check.check)
    app.router.add_post("/v1/messages/check", messages.check_message)  # 404 unless [messages] is enabled
    app.router.add_post("/v1/consents", consents.grant)
    app.router.add_post("/v1/consents/revoke", consents.revoke)
    app.router.add_get("/v1/consents", consents.query)
    app.router.add_post("/v1/subscribers", subscribers.register)
    app.router.add_post("/v1/subscribers/withdraw", subscribers.withdraw)
    app.router.add_post("/v1/subscribers/blocks", subscribers.block)
    app.router.add_post("/v1/subscribers/unblock", subscribers.unblock)
    app.router.add_get("/v1/subscribers/{number}", subscribers.status)
    enforcement.add_routes(app)  # alerts, cases, complaints: 404 unless [enforcement] is enabled
