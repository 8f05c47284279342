"""``/v1/consents``: grant, revoke and query consents with their evidence (tenant from the API key)."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from dncgate.api.context import callee_of, caller, posted
from dncgate.api.records import categories_of, consent_json, entity_of, record_json, time_of
from dncgate.consent.ledger import record_consent
from dncgate.consent.model import Action


async def _record(request: web.Request, action: Action) -> web.Response:
    post = await posted(request)
    context, data = post.context, post.data
    event = post.event(
        action, entity=entity_of(data), categories=categories_of(data),
        valid_from=time_of(data, "valid_from") if action is Action.GRANT else None,
        expires_at=time_of(data, "expires_at") if action is Action.GRANT else None,
    )
    sealed, state = await context.bounded(record_consent(context.ledger, event))
    body = {"record": record_json(sealed), "consent": consent_json(event.entity, state)}
    return web.json_response(body, status=201)


grant = partial(_record, action=Action.GRANT)  # POST /v1/consents
revoke = partial(_record, action=Action.REVOKE)  # POST /v1/consents/revoke


async def query(request: web.Request) -> web.Response:
    """GET /v1/consents?number=...[&entity=...][&history=true]"""
    context, who = caller(request)
    callee = callee_of(who.tenant, request.query.get("number"))
    states = await context.bounded(context.ledger.consents(who.tenant.name, callee.digits))
    entity = request.query.get("entity")
    consents = [consent_json(e, s) for e, s in states.items() if entity is None or e == entity]
    body: dict[str, object] = {"number": callee.e164, "consents": consents}
    if request.query.get("history", "").lower() in {"1", "true", "yes"}:
        body["history"] = [record_json(e) async for e in context.ledger.history(who.tenant.name, callee.digits)
                           if entity is None or e.entity == entity]
    return web.json_response(body)
