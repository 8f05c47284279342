"""``/v1/alerts``, ``/v1/cases``, ``/v1/complaints``: enforcement over HTTP (tenant from the API key).

Every action records its actor as ``api:<key id>``. An ``Idempotency-Key`` header makes a retried
action safe: the step it recorded is returned (``"replayed": true``) instead of a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from dncgate.api.context import Caller, caller
from dncgate.api.errors import ApiError, field, json_body
from dncgate.early_warning.alerts import Alert, Severity
from dncgate.enforcement.casefile import case_file
from dncgate.enforcement.complaints import Step
from dncgate.enforcement.desk import EnforcementDesk
from dncgate.enforcement.model import CaseAction, CaseState, originator_key, parse_iso
from dncgate.enforcement.protocol import CaseConflict
from dncgate.enforcement.service import Step as CaseStep
from dncgate.enforcement.service import UnknownCase
from dncgate.errors import CaseError, StoreError
from dncgate.model import Restriction

ENFORCEMENT = web.AppKey("dncgate_enforcement", EnforcementDesk)


def _desk(request: web.Request) -> tuple[EnforcementDesk, Caller]:
    _, who = caller(request)
    desk = request.app.get(ENFORCEMENT)
    if desk is None:
        raise ApiError(404, "not_found", "enforcement is not enabled ([enforcement] enabled = true)")
    return desk, who


def _actor(who: Caller) -> str:
    return f"api:{who.key.key_id}"


async def _guarded(operation: Any) -> Any:
    try:
        return await operation
    except UnknownCase as exc:
        raise ApiError(404, "unknown_case", str(exc)) from None
    except CaseError as exc:  # the case's state (or the notice period) does not allow it, as asked
        raise ApiError(409, "case_refused", str(exc)) from None
    except CaseConflict as exc:
        raise ApiError(409, "case_conflict", str(exc)) from None
    except StoreError as exc:
        raise ApiError(503, "store_unavailable", str(exc)) from None


def _step_json(step: CaseStep, status: int = 201) -> web.Response:
    return web.json_response({"case": step.case.as_dict(), "transition": step.transition.as_dict(),
                              "replayed": step.replayed}, status=200 if step.replayed else status)


# -- alerts ---------------------------------------------------------------------------------------

async def list_alerts(request: web.Request) -> web.Response:
    desk, who = _desk(request)
    pending = request.query.get("unacknowledged", "").lower() in {"1", "true", "yes"}
    alerts = await _guarded(desk.alerts.alerts(who.tenant.name, unacknowledged=pending, limit=_limit(request)))
    return web.json_response({"alerts": [{**a.as_dict(), "acknowledged_by": by} for a, by in alerts]})


async def acknowledge_alert(request: web.Request) -> web.Response:
    desk, who = _desk(request)
    found = await _guarded(desk.alerts.acknowledge(who.tenant.name, request.match_info["alert_id"], _actor(who)))
    if found is None:
        raise ApiError(404, "unknown_alert", f"no alert {request.match_info['alert_id']!r} in this tenant")
    alert, by = found
    return web.json_response({"alert": alert.as_dict(), "acknowledged_by": by})


async def post_alert(request: web.Request) -> web.Response:
    """An alert from an external analytics system (or a test): handled like the analyser's."""
    desk, who = _desk(request)
    data = await json_body(request)
    try:
        origin = originator_key(who.tenant.name, field(data, "originator_kind", str), field(data, "originator", str))
        severity = Severity(field(data, "severity", str))
        raised = parse_iso(data.get("raised_at"), "raised_at") or datetime.now(UTC)
    except (CaseError, ValueError) as exc:
        raise ApiError(422, "invalid_alert", str(exc)) from None
    figures = data.get("figures", {})
    if not isinstance(figures, dict) or not all(isinstance(v, int | float) for v in figures.values()):
        raise ApiError(422, "invalid_alert", "figures: an object of numbers")
    alert = Alert(alert_id=field(data, "alert_id", str)[:80], originator=origin, rule=field(data, "rule", str)[:64],
                  severity=severity, raised_at=raised, window=str(data.get("window", ""))[:16],
                  figures={str(k)[:64]: float(v) for k, v in list(figures.items())[:50]},
                  threshold=float(data.get("threshold", 0.0)), report_only=bool(data.get("report_only", False)),
                  detail=f"posted by {_actor(who)}")
    await _guarded(desk.on_alert(alert))
    case = await desk.cases.store.open_case(origin)
    return web.json_response({"alert": alert.as_dict(), "case": case.as_dict() if case else None}, status=202)


# -- cases ----------------------------------------------------------------------------------------

async def list_cases(request: web.Request) -> web.Response:
    desk, who = _desk(request)
    raw = request.query.get("state")
    try:
        state = CaseState(raw) if raw else None
    except ValueError:
        raise ApiError(422, "invalid_field", f"state: one of {', '.join(s.value for s in CaseState)}") from None
    cases = await _guarded(desk.cases.store.cases(who.tenant.name, state=state, limit=_limit(request)))
    return web.json_response({"cases": [c.as_dict() for c in cases]})


async def get_case(request: web.Request) -> web.Response:
    desk, who = _desk(request)
    case = await _guarded(desk.cases.case(who.tenant.name, request.match_info["case_id"]))
    steps = [s.as_dict() async for s in desk.cases.store.transitions(who.tenant.name, case.case_id)]
    return web.json_response({"case": case.as_dict(), "transitions": steps})


async def case_action(request: web.Request) -> web.Response:
    """POST /v1/cases/{id}/actions {"action": "notice"|"restrict"|"suspend"|..., "reason", "urgent", "schedule"}"""
    desk, who = _desk(request)
    data = await json_body(request)
    try:
        action = CaseAction(field(data, "action", str))
    except ValueError:
        raise ApiError(422, "invalid_field", f"action: one of {', '.join(a.value for a in CaseAction)}") from None
    return _step_json(await _act(request, desk, who, data, action))


async def appeal(request: web.Request) -> web.Response:
    desk, who = _desk(request)
    return _step_json(await _act(request, desk, who, await json_body(request), CaseAction.APPEAL))


async def decide_appeal(request: web.Request) -> web.Response:
    """POST /v1/cases/{id}/appeal/decision {"decision": "reinstate"|"uphold", "reason"}"""
    desk, who = _desk(request)
    data = await json_body(request)
    decision = field(data, "decision", str)
    if decision not in ("reinstate", "uphold"):
        raise ApiError(422, "invalid_field", "decision: reinstate or uphold")
    return _step_json(await _act(request, desk, who, data, CaseAction(decision)))


async def _act(request: web.Request, desk: EnforcementDesk, who: Caller, data: dict[str, Any],
               action: CaseAction) -> CaseStep:
    restriction = None
    if action is CaseAction.RESTRICT and ("per_minute" in data or "concurrent" in data):
        policy = desk.cases.policy.restriction
        restriction = Restriction(field(data, "per_minute", int, required=False, default=policy.per_minute),
                                  field(data, "concurrent", int, required=False, default=policy.concurrent))
    key = request.headers.get("Idempotency-Key", "")[:120] or None
    step: CaseStep = await _guarded(desk.cases.act(
        who.tenant.name, request.match_info["case_id"], action, actor=_actor(who), reason=field(data, "reason", str),
        urgent=field(data, "urgent", bool, required=False, default=False), key=key and f"api:{key}",
        restriction=restriction, schedule=field(data, "schedule", bool, required=False, default=True)))
    return step


async def export_case(request: web.Request) -> web.Response:
    desk, who = _desk(request)
    case = await _guarded(desk.cases.case(who.tenant.name, request.match_info["case_id"]))
    return web.json_response(await case_file(desk.cases.store, case))


# -- complaints -----------------------------------------------------------------------------------

async def file_complaint(request: web.Request) -> web.Response:
    desk, who = _desk(request)
    data = await json_body(request)
    try:
        complaint, replayed = await desk.complaints.file(who.tenant.name, data, actor=_actor(who))
    except CaseError as exc:
        raise ApiError(422, "invalid_complaint", str(exc)) from None
    except StoreError as exc:
        raise ApiError(503, "store_unavailable", str(exc)) from None
    return web.json_response({"complaint": complaint.as_dict(desk.complaints.sla), "replayed": replayed},
                             status=200 if replayed else 201)


async def list_complaints(request: web.Request) -> web.Response:
    desk, who = _desk(request)
    complaints = await desk.complaints.store.complaints(who.tenant.name, limit=_limit(request))
    return web.json_response({"complaints": [c.as_dict(desk.complaints.sla) for c in complaints]})


async def complaint_step(request: web.Request) -> web.Response:
    """POST /v1/complaints/{id}/steps {"step": "forward"|"answer"|"inform", "answer": "..."}"""
    desk, who = _desk(request)
    data = await json_body(request)
    try:
        step = Step(field(data, "step", str))
        complaint = await desk.complaints.step(who.tenant.name, request.match_info["complaint_id"], step,
                                               answer=str(data.get("answer", "")), actor=_actor(who))
    except ValueError as exc:  # CaseError is a ValueError too
        raise ApiError(422, "complaint_refused", str(exc)) from None
    return web.json_response({"complaint": complaint.as_dict(desk.complaints.sla)})


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(422, "invalid_field", "limit: 1-1000")
    return int(raw)


def install_enforcement(app: web.Application, desk: EnforcementDesk) -> None:
    """Give the routes (``add_routes``, mounted by ``install_api``) their enforcement."""
    app[ENFORCEMENT] = desk


def add_routes(app: web.Application) -> None:
    """The routes, always mounted (documented in openapi.json): 404 until ``install_enforcement``."""
    app.add_routes([
        web.get("/v1/alerts", list_alerts), web.post("/v1/alerts", post_alert),
        web.post("/v1/alerts/{alert_id}/acknowledge", acknowledge_alert),
        web.get("/v1/cases", list_cases), web.get("/v1/cases/{case_id}", get_case),
        web.post("/v1/cases/{case_id}/actions", case_action), web.post("/v1/cases/{case_id}/appeal", appeal),
        web.post("/v1/cases/{case_id}/appeal/decision", decide_appeal),
        web.get("/v1/cases/{case_id}/file", export_case),
        web.post("/v1/complaints", file_complaint), web.get("/v1/complaints", list_complaints),
        web.post("/v1/complaints/{complaint_id}/steps", complaint_step),
    ])
