"""``GET /v1/check``: a decision without a call (resellers, CRM pre-checks). Same path as the doors."""

from __future__ import annotations

import structlog
from aiohttp import web

from dncgate.api.context import caller
from dncgate.api.errors import ApiError
from dncgate.gate import CheckRequest
from dncgate.model import Originator, Purpose

log = structlog.get_logger("dncgate.api")
_PURPOSES = {p.value for p in Purpose}


async def check(request: web.Request) -> web.Response:
    """GET /v1/check?number=...&purpose=marketing|service[&category=...][&entity=...]"""
    context, who = caller(request)
    query = request.query
    number = query.get("number", "")
    if not number.strip():
        raise ApiError(422, "missing_field", "number: required")
    purpose = query.get("purpose") or who.tenant.default_purpose.value
    if purpose not in _PURPOSES:
        raise ApiError(422, "invalid_field", f"purpose: one of {', '.join(sorted(_PURPOSES))}")
    category = query.get("category") or None
    if category is not None and category not in context.ledger.config.categories:
        raise ApiError(422, "invalid_field", f"category: one of {', '.join(context.ledger.config.categories)}")
    result = await context.gate.check(
        CheckRequest(
            dialled=number[:64], door="api", tenant=who.tenant.name, purpose=purpose, category=category,
            originator=Originator(account=who.key.key_id, entity=query.get("entity", "")[:64]),
        ),
        log.bind(api_key=who.key.key_id),
    )
    decision = result.decision
    return web.json_response({
        "verdict": decision.verdict.value, "outcome": decision.outcome.value, "reason": decision.reason.value,
        "mode": decision.mode.value, "detail": decision.detail, "sip_code": decision.sip_code,
        "list": decision.list_name, "list_version": decision.list_version, "decision_id": result.decision_id,
        "callee": result.record.callee,
    })
