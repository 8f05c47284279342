"""The reading pages: overview, decisions (search and one record), subscribers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog
from aiohttp import web

from dncgate.consent.model import Action, Channel, Evidence, LedgerError, LedgerEvent
from dncgate.console.charts import stacked_bars
from dncgate.console.i18n import translator
from dncgate.console.web import Refused, context_of, form_of, render, tenant_of, viewer_of
from dncgate.lists.freshness import parse_time
from dncgate.model import Reason
from dncgate.numbers import Subscriber, normalise
from dncgate.policy import RULES
from dncgate.store.audit_query import AuditQuery, MinuteCount
from dncgate.store.protocol import NATIONAL, list_key

log = structlog.get_logger("dncgate.console")
routes = web.RouteTableDef()
REASONS = [r.value for r in Reason]
RULE_OF = {rule.reason.value: (n, rule.when) for n, rule in enumerate(RULES, start=1)}


def _minute(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M")


@routes.get("/console/")
async def overview(request: web.Request) -> web.Response:
    viewer, context = viewer_of(request), context_of(request)
    tenant = tenant_of(request, viewer)
    now = context.clock()
    counts = await context.store.audit_minutes((tenant,), _minute(now - timedelta(days=1)))
    p50, p99 = context.health.latency_quantiles()
    _ = translator(viewer.lang)
    return render(request, "overview.html", tenant=tenant, lists=await _lists(request, tenant, now),
                  hour=_hour_chart(counts, now, _), day=_day_chart(counts, now, _), reasons=_reasons(counts, now),
                  doors=context.health.doors(), backlog=context.health.audit_backlog(), p50=p50, p99=p99,
                  failures=sorted(context.health.sync_failures().items()), now=now)


async def _lists(request: web.Request, tenant: str, now: datetime) -> list[dict[str, Any]]:
    context = context_of(request)
    policy = context.tenants[tenant]
    stats = {s.list_name: s for s in await context.store.stats()}
    shown = []
    for name in (NATIONAL, list_key(tenant)):
        s = stats.get(name)
        state = await context.store.sync_state(name)
        fresh = parse_time(state.get("fresh_at", "")) or (parse_time(s.loaded_at) if s and s.version else None)
        age = now - fresh if fresh else None
        limit = policy.max_list_age if name == NATIONAL else None  # the tenant's limit is on the national list
        shown.append({"name": name, "count": s.count if s else 0, "version": s.version if s else "",
                      "loaded_at": s.loaded_at if s else "", "last_sync": state.get("fresh_at", ""),
                      "age_days": round(age / timedelta(days=1), 1) if age is not None else None,
                      "limit_days": limit.days if limit else None,
                      "stale": limit is not None and (age is None or age > limit),
                      "rules": s.prefix_rules if s else 0})
    return shown


def _hour_chart(counts: list[MinuteCount], now: datetime, _: Callable[[str], str]) -> Any:
    labels = [_minute(now - timedelta(minutes=59 - i)) for i in range(60)]
    index = {label: i for i, label in enumerate(labels)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * 60)
    for c in counts:
        if c.minute in index:
            series[c.verdict][index[c.minute]] += c.count
    return stacked_bars(_("Decisions per minute over the last hour, by verdict"), [label[11:] for label in labels],
                        dict(series))


def _day_chart(counts: list[MinuteCount], now: datetime, _: Callable[[str], str]) -> Any:
    labels = [(now - timedelta(hours=23 - i)).strftime("%Y-%m-%dT%H") for i in range(24)]
    index = {label: i for i, label in enumerate(labels)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    for c in counts:
        if c.minute[:13] in index:
            series[c.verdict][index[c.minute[:13]]] += c.count
    return stacked_bars(_("Decisions per hour over the last day, by verdict"),
                        [label[11:] + ":00" for label in labels], dict(series), every=3)


def _reasons(counts: list[MinuteCount], now: datetime) -> list[tuple[str, int, int]]:
    hour_from = _minute(now - timedelta(hours=1))
    hour: dict[str, int] = defaultdict(int)
    day: dict[str, int] = defaultdict(int)
    for c in counts:
        day[c.reason] += c.count
        if c.minute >= hour_from:
            hour[c.reason] += c.count
    return sorted(((r, hour[r], day[r]) for r in day), key=lambda row: -row[2])


def _utc(text: str, name: str) -> str:
    if not text:
        return ""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(422, f"{name}: a time like 2026-12-02T10:00 (UTC)") from None
    if at.tzinfo is not None:  # an offset given: the same instant in UTC (the audit's times are UTC)
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat()


@routes.get("/console/decisions")
async def decisions(request: web.Request) -> web.Response:
    viewer, context = viewer_of(request), context_of(request)
    tenant = tenant_of(request, viewer)
    q = request.query
    number, problem = q.get("number", "").strip()[:64], ""
    callees: tuple[str, ...] = ()
    if number:
        callee = normalise(number, context.tenants[tenant].dial_plan)
        if isinstance(callee, Subscriber):
            callees = (callee.e164,)
        else:
            problem = f"{number!r} is not a subscriber number in {context.tenants[tenant].dial_plan.region}"
    reason = q.get("reason", "")
    if reason and reason not in REASONS:
        raise Refused(422, "reason: one of " + ", ".join(REASONS))
    query = AuditQuery(tenants=(tenant,), callees=callees, originator=q.get("originator", "").strip()[:64],
                       reason=reason, since=_utc(q.get("since", ""), "since"), until=_utc(q.get("until", ""), "until"),
                       before=q.get("before", "")[:80], limit=50)
    page = await context.store.audit_search(query) if not problem else None
    params = {k: v for k, v in q.items() if k != "before" and v}
    return render(request, "decisions.html", tenant=tenant, q=q, reasons=REASONS, page=page, problem=problem,
                  searched=callees, params=params)


@routes.get("/console/decisions/{decision_id}")
async def decision(request: web.Request) -> web.Response:
    viewer, context = viewer_of(request), context_of(request)
    record = await context.store.audit_record(request.match_info["decision_id"][:64])
    if record is None or not context.record_visible(viewer.operator, record):
        raise Refused(404, "no such decision")
    row, rule = RULE_OF.get(record.reason, (None, ""))
    return render(request, "decision.html", tenant=record.tenant, r=record, row=row, rule=rule)


@routes.get("/console/subscribers")
async def subscriber(request: web.Request) -> web.Response:
    viewer, context = viewer_of(request), context_of(request)
    tenant = tenant_of(request, viewer)
    number = request.query.get("number", "").strip()[:64]
    found: dict[str, Any] | None = None
    problem = ""
    if number:
        callee = normalise(number, context.tenants[tenant].dial_plan)
        if not isinstance(callee, Subscriber):
            problem = f"{number!r} is not a subscriber number in {context.tenants[tenant].dial_plan.region}"
        else:
            prefs = await context.ledger.preferences(tenant, callee.digits)
            consents = await context.ledger.consents(tenant, callee.digits)
            history = [e async for e in context.ledger.history(tenant, callee.digits)]
            found = {"e164": callee.e164, "prefs": prefs, "consents": sorted(consents.items()),
                     "history": history[-200:][::-1]}
    return render(request, "subscriber.html", tenant=tenant, number=number, found=found, problem=problem,
                  channels=[c.value for c in ON_BEHALF])


ON_BEHALF = (Channel.PAPER, Channel.WEB, Channel.SMS)  # how a subscriber's own request reached the operator


@routes.post("/console/subscribers")
async def on_behalf(request: web.Request) -> web.Response:
    """An operator records a subscriber's own request (decline all marketing, or withdraw): a ledger
    record like the API's, its evidence captured by ``console:<operator>``."""
    viewer, context = viewer_of(request), context_of(request)
    form = form_of(await request.post())
    tenant = tenant_of(request, viewer, form)
    callee = normalise(form.get("number", "")[:64], context.tenants[tenant].dial_plan)
    if not isinstance(callee, Subscriber):
        raise Refused(422, "number: not a subscriber number")
    actions = {"decline_all": Action.DECLINE, "withdraw": Action.WITHDRAW}
    if form.get("action") not in actions or form.get("channel") not in {c.value for c in ON_BEHALF}:
        raise Refused(422, "action: decline_all or withdraw; channel: " + ", ".join(c.value for c in ON_BEHALF))
    if not form.get("source", "").strip():
        raise Refused(422, "source: where the request came from (a letter's reference, a form id)")
    evidence = Evidence(channel=Channel(form["channel"]), captured_at=context.clock(), source=form["source"][:200],
                        shown=form.get("shown", "")[:500] or "operator console", captured_by=viewer.actor)
    event = LedgerEvent(tenant=tenant, action=actions[form["action"]], callee=callee.e164, evidence=evidence,
                        detail=f"recorded by {viewer.actor} on the subscriber's behalf")
    try:
        await context.ledger.append(event)
    except LedgerError as exc:
        raise Refused(422, str(exc)) from None
    log.info("console.on_behalf", operator=viewer.operator.name, tenant=tenant, action=form["action"])
    raise web.HTTPSeeOther(f"/console/subscribers?tenant={tenant}&number={quote(callee.e164)}")
