"""Early warning's pages: alerts, cases (timeline, evidence, the originator's calls, the workflow's
actions) and complaints with their SLA clocks. Every action calls the enforcement desk the API
calls, with the actor ``console:<operator>``."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import structlog
from aiohttp import web

from dncgate.console.charts import stacked_bars
from dncgate.console.web import Refused, context_of, form_of, render, tenant_of, viewer_of
from dncgate.enforcement import machine
from dncgate.enforcement.complaints import Step
from dncgate.enforcement.desk import EnforcementDesk
from dncgate.enforcement.model import CaseAction, CaseState
from dncgate.enforcement.service import UnknownCase
from dncgate.errors import CaseError
from dncgate.store.audit_query import AuditQuery

log = structlog.get_logger("dncgate.console")
routes = web.RouteTableDef()
ASKED = [a for a in CaseAction if a in machine.ACTIONS
         and a not in (CaseAction.DELIVERY, CaseAction.ALERT, CaseAction.SCHEDULE_SUSPENSION)]
WINDOW = timedelta(minutes=5)


def _desk(request: web.Request) -> EnforcementDesk:
    desk = context_of(request).desk
    if desk is None:
        raise Refused(404, "enforcement is not enabled ([enforcement] enabled = true)")
    return desk


@routes.get("/console/alerts")
async def alerts(request: web.Request) -> web.Response:
    viewer, desk = viewer_of(request), _desk(request)
    tenant = tenant_of(request, viewer)
    pending = request.query.get("unacknowledged") == "1"
    rule = request.query.get("rule", "")
    shown = [(a, by) for a, by in await desk.alerts.alerts(tenant, unacknowledged=pending, limit=200)
             if not rule or a.rule == rule]
    return render(request, "alerts.html", tenant=tenant, alerts=shown, pending=pending, rule=rule)


@routes.post("/console/alerts/{alert_id}/acknowledge")
async def acknowledge(request: web.Request) -> web.Response:
    viewer, desk = viewer_of(request), _desk(request)
    form = form_of(await request.post())
    tenant = tenant_of(request, viewer, form)
    if await desk.alerts.acknowledge(tenant, request.match_info["alert_id"], viewer.actor) is None:
        raise Refused(404, "no such alert")
    raise web.HTTPSeeOther(f"/console/alerts?tenant={tenant}")


@routes.get("/console/cases")
async def cases(request: web.Request) -> web.Response:
    viewer, desk = viewer_of(request), _desk(request)
    tenant = tenant_of(request, viewer)
    raw = request.query.get("state", "")
    try:
        state = CaseState(raw) if raw else None
    except ValueError:
        raise Refused(422, "state: one of " + ", ".join(s.value for s in CaseState)) from None
    found = await desk.cases.store.cases(tenant, state=state, limit=200)
    return render(request, "cases.html", tenant=tenant, cases=found, state=raw, states=[s.value for s in CaseState])


@routes.get("/console/cases/{case_id}")
async def case(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    return await _case_page(request, tenant_of(request, viewer), request.match_info["case_id"][:80])


async def _case_page(request: web.Request, tenant: str, case_id: str, message: str = "",
                     status: int = 200) -> web.Response:
    desk, context = _desk(request), context_of(request)
    try:
        found = await desk.cases.case(tenant, case_id)
    except UnknownCase:
        raise Refused(404, "no such case") from None
    steps = [s async for s in desk.cases.store.transitions(tenant, found.case_id)]
    allowed = [a.value for a in ASKED if found.state in machine.ALLOWED_FROM[a]
               or found.state in machine.URGENT_FROM.get(a, frozenset())]
    due = machine.suspension_due(found, desk.cases.policy.notice_period)
    calls = await context.store.audit_search(AuditQuery(
        tenants=(tenant,), originator=found.originator.value, since=(found.opened_at - timedelta(hours=1)).isoformat(),
        limit=200))
    return render(request, "case.html", status=status, tenant=tenant, case=found, steps=steps[::-1],
                  allowed=allowed, due=due, now=context.clock(), chart=_windows(calls.records),
                  calls=calls.records[:20], message=message)


def _windows(records: list[Any]) -> Any:
    """The originator's decisions in 5-minute windows, by verdict (the newest 200)."""
    if not records:
        return None
    per: Counter[tuple[str, str]] = Counter()
    for r in records:
        at = r.at[:16]
        minute = int(at[14:16]) // 5 * 5
        per[(f"{at[:14]}{minute:02d}", r.verdict)] += 1
    labels = sorted({label for label, _ in per})
    verdicts = sorted({v for _, v in per})
    series = {v: [per[(label, v)] for label in labels] for v in verdicts}
    return stacked_bars("the originator's decisions per 5 minutes", [label[11:] for label in labels], series,
                        every=max(1, len(labels) // 8))


@routes.post("/console/cases/{case_id}/actions")
async def act(request: web.Request) -> web.Response:
    viewer, desk = viewer_of(request), _desk(request)
    form = form_of(await request.post())
    tenant = tenant_of(request, viewer, form)
    case_id = request.match_info["case_id"][:80]
    asked = form.get("action", "")
    schedule = asked == "suspend_after_notice"
    try:
        action = CaseAction("suspend" if schedule else asked)
        if action not in ASKED:
            raise ValueError(asked)
    except ValueError:
        raise Refused(422, "action: one of " + ", ".join(a.value for a in ASKED)) from None
    try:
        step = await desk.cases.act(tenant, case_id, action, actor=viewer.actor, reason=form.get("reason", "")[:500],
                                    urgent=form.get("urgent") == "1", schedule=schedule,
                                    key=f"console:{form.get('nonce', '')[:64]}" if form.get("nonce") else None)
    except UnknownCase:
        raise Refused(404, "no such case") from None
    except CaseError as exc:
        log.info("console.action_refused", operator=viewer.operator.name, case_id=case_id, action=asked,
                 error=str(exc))
        return await _case_page(request, tenant, case_id, str(exc), 409)
    log.info("console.case_action", operator=viewer.operator.name, case_id=case_id, action=step.transition.action.value,
             state=step.case.state.value)
    raise web.HTTPSeeOther(f"/console/cases/{case_id}?tenant={tenant}")


@routes.get("/console/complaints")
async def complaints(request: web.Request) -> web.Response:
    viewer, desk, context = viewer_of(request), _desk(request), context_of(request)
    tenant = tenant_of(request, viewer)
    found = await desk.complaints.store.complaints(tenant, limit=200)
    now, sla = context.clock(), desk.complaints.sla
    rows = [(c, [(step.value, due, c.done(step), due <= now and c.done(step) is None, dict(c.steps_by).get(step.value))
                 for step, due in c.deadlines(sla).items()]) for c in found]
    return render(request, "complaints.html", tenant=tenant, rows=rows, now=now)


@routes.post("/console/complaints/{complaint_id}/steps")
async def complaint_step(request: web.Request) -> web.Response:
    viewer, desk = viewer_of(request), _desk(request)
    form = form_of(await request.post())
    tenant = tenant_of(request, viewer, form)
    try:
        step = Step(form.get("step", ""))
        await desk.complaints.step(tenant, request.match_info["complaint_id"][:80], step,
                                   answer=form.get("answer", "")[:2000], actor=viewer.actor)
    except ValueError as exc:  # CaseError too: no such complaint, a step done already
        raise Refused(409, str(exc)) from None
    log.info("console.complaint_step", operator=viewer.operator.name, complaint_id=request.match_info["complaint_id"],
             step=step.value)
    raise web.HTTPSeeOther(f"/console/complaints?tenant={tenant}")
