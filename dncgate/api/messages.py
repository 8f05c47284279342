"""``POST /v1/messages/check``: one message (SIP MESSAGE from Asterisk's dialplan, or any sender's
pre-check) on the same path as calls. The tenant comes from the API key.

The body is JSON, or form fields (``application/x-www-form-urlencoded``: what Asterisk's ``CURL()``
posts). ``?format=form`` answers ``key=value&...`` instead of JSON, which ``CURLOPT(hashcompat)``
turns into a dialplan ``HASH()``: the shipped context reads ``${HASH(dncgate,verdict)}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import structlog
from aiohttp import web

from dncgate.api.context import caller
from dncgate.api.errors import ApiError, json_body
from dncgate.errors import MessageError
from dncgate.messages.model import DOORS, Message, MessageOutcome
from dncgate.store.errors import StoreError

log = structlog.get_logger("dncgate.api")
_FIELDS = ("from", "to", "body", "purpose", "category", "door", "message_id")


async def check_message(request: web.Request) -> web.Response:
    """POST /v1/messages/check {from, to, body, purpose?, category?, door?, message_id?}"""
    context, who = caller(request)
    service = context.messages
    if service is None:
        raise ApiError(404, "not_found", "message checks are not enabled ([messages] enabled = true)")
    data = await _body(request)
    values: dict[str, str] = {}
    for name in _FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiError(422, "invalid_field", f"{name}: expected a string")
        values[name] = value or ""
    door = values["door"] or "sip-message"
    if door not in DOORS:
        raise ApiError(422, "invalid_field", f"door: one of {', '.join(sorted(DOORS))}")
    message = Message(
        sender=values["from"], recipient=values["to"], body=values["body"], door=door, tenant=who.tenant.name,
        purpose=values["purpose"] or None, category=values["category"] or None,
        message_id=values["message_id"][:256], account=who.key.key_id,
    )
    try:
        outcome = await service.handle(message, log.bind(api_key=who.key.key_id))
    except MessageError as exc:
        raise ApiError(422, "invalid_message", str(exc)) from None
    except StoreError as exc:  # an opt-out reply that could not be recorded: the switch must not drop it
        raise ApiError(503, "store_unavailable", str(exc)) from None
    answer = outcome_json(outcome)
    if request.query.get("format") == "form":
        flat = {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in answer.items()}
        return web.Response(text=urlencode(flat, quote_via=quote), content_type="application/x-www-form-urlencoded")
    return web.json_response(answer)


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            form = await request.post()
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, "malformed_form", f"the form is not valid UTF-8 form data: {exc}") from None
        return {name: form.get(name) for name in _FIELDS if name in form}
    return await json_body(request)


def outcome_json(outcome: MessageOutcome) -> dict[str, Any]:
    check, opt_out = outcome.check, outcome.opt_out
    answer: dict[str, Any] = {
        "direction": outcome.direction.value, "deliver": outcome.deliver,
        "verdict": "allow" if outcome.deliver else "reject", "sender_port": outcome.port.number,
        "sender_registered_for": outcome.port.registered_for.value if outcome.port.registered_for else None,
        "notice": outcome.notice, "opt_out_record": opt_out.id if opt_out is not None else None,
    }
    if check is not None:
        decision = check.decision
        answer |= {
            "outcome": decision.outcome.value, "reason": decision.reason.value, "mode": decision.mode.value,
            "detail": decision.detail, "list": decision.list_name, "list_version": decision.list_version,
            "decision_id": check.decision_id, "recipient": check.record.callee, "purpose": check.attempt.purpose.value,
        }
    return answer
