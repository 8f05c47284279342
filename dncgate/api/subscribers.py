"""``/v1/subscribers``: registration (decline all marketing or chosen categories), withdrawal, blocks."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from dncgate.api.context import callee_of, caller, posted
from dncgate.api.errors import ApiError, field
from dncgate.api.records import categories_of, entity_of, preferences_json, record_json
from dncgate.consent.model import Action, LedgerEvent


async def register(request: web.Request) -> web.Response:
    """POST /v1/subscribers {number, decline: "all" | "categories", categories?, evidence}"""
    post = await posted(request)
    decline = field(post.data, "decline", str)
    categories = categories_of(post.data)
    if decline == "all":
        categories = ()
    elif decline != "categories" or not categories:
        raise ApiError(422, "invalid_field", "decline: 'all', or 'categories' with a non-empty categories array")
    return await _append(request, post.event(Action.DECLINE, categories=categories))


async def withdraw(request: web.Request) -> web.Response:
    """POST /v1/subscribers/withdraw {number, evidence}: the registration no longer applies."""
    return await _append(request, (await posted(request)).event(Action.WITHDRAW))


async def _block(request: web.Request, action: Action) -> web.Response:
    """POST /v1/subscribers/blocks|unblock {number, entity, evidence}: a block stops service calls too."""
    post = await posted(request)
    return await _append(request, post.event(action, entity=entity_of(post.data)))


block = partial(_block, action=Action.BLOCK)  # POST /v1/subscribers/blocks
unblock = partial(_block, action=Action.UNBLOCK)  # POST /v1/subscribers/unblock


async def _append(request: web.Request, event: LedgerEvent) -> web.Response:
    context, who = caller(request)
    sealed = await context.bounded(context.ledger.append(event))
    prefs = await context.bounded(context.ledger.preferences(who.tenant.name, sealed.digits))
    return web.json_response({"record": record_json(sealed), "preferences": preferences_json(sealed.callee, prefs)},
                             status=201)


async def status(request: web.Request) -> web.Response:
    """GET /v1/subscribers/{number}"""
    context, who = caller(request)
    callee = callee_of(who.tenant, request.match_info.get("number"))
    prefs = await context.bounded(context.ledger.preferences(who.tenant.name, callee.digits))
    return web.json_response(preferences_json(callee.e164, prefs))
