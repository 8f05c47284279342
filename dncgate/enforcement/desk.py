"""The complaint desk and the alert book: what the API and the CLI act on besides cases.

``ComplaintDesk.file`` checks a complaint, matches it to the gate's decisions in the audit (same
tenant, the originator's caller ID, the complainant as callee, within ``match_window`` of the
call), stores it (idempotent by id) and reports it as a signal (``on_complaint``, for the early
warning's complaints-per-1,000-calls). ``due`` lists the SLA steps about to lapse (logged).

``RecentAlerts`` keeps the last alerts in memory for listing and acknowledgement, until the early
warning's analyser offers its own queries (``AlertQueries``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from dncgate.audit_record import AuditRecord
from dncgate.early_warning.alerts import Alert, OriginatorKey, OriginatorKind
from dncgate.enforcement.complaints import MAX_DECISIONS, Complaint, Sla, Step, calendar_of, complaint_of
from dncgate.enforcement.notices import WebhookNotifier
from dncgate.enforcement.protocol import CaseStore
from dncgate.enforcement.service import Enforcement, Policy
from dncgate.errors import CaseError
from dncgate.model import Restriction
from dncgate.settings.enforcement import EnforcementSettings

log = structlog.get_logger("dncgate.enforcement.complaints")
OnComplaint = Callable[[OriginatorKey, datetime], None]


class AuditSource(Protocol):
    async def audit_tail(self, limit: int) -> list[AuditRecord]: ...


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


class ComplaintDesk:
    def __init__(self, store: CaseStore, audit: AuditSource, sla: Sla, *, clock: Callable[[], datetime],
                 on_complaint: OnComplaint | None = None, match_window: timedelta = timedelta(minutes=10),
                 audit_scan: int = 10_000) -> None:
        self.store, self.audit, self.sla = store, audit, sla
        self._clock = clock
        self.on_complaint = on_complaint
        self.match_window, self.audit_scan = match_window, audit_scan

    async def file(self, tenant: str, data: dict[str, Any], *, actor: str) -> tuple[Complaint, bool]:
        """Record a complaint. Raises ``CaseError`` (what is wrong with it) before anything is stored."""
        given_id = data.get("id")
        if given_id is not None and (not isinstance(given_id, str) or not 0 < len(given_id) <= 80):
            raise CaseError("id: a string of 1-80 characters (your reference; it makes a retry safe)")
        complaint = complaint_of(tenant, data, received_at=self._clock(), recorded_by=actor, complaint_id=given_id)
        complaint = replace(complaint, decisions=await self._matches(complaint))
        stored, replayed = await self.store.put_complaint(complaint)
        if not replayed:
            log.info("enforcement.complaint_filed", tenant=tenant, complaint_id=stored.id,
                     originator=stored.originator_number, matched=len(stored.decisions))
            if self.on_complaint is not None:
                self.on_complaint(OriginatorKey(tenant, OriginatorKind.CALLER_ID, stored.originator_number),
                                  stored.called_at)
        return stored, replayed

    async def _matches(self, complaint: Complaint) -> tuple[str, ...]:
        caller, callee = _digits(complaint.originator_number), _digits(complaint.complainant)
        found: list[str] = []
        for record in reversed(await self.audit.audit_tail(self.audit_scan)):
            if record.tenant != complaint.tenant or _digits(record.caller_id) != caller:
                continue
            if callee and _digits(record.callee) != callee:
                continue
            try:
                at = datetime.fromisoformat(record.at)
            except ValueError:
                continue
            if abs(at - complaint.called_at) <= self.match_window:
                found.append(record.decision_id)
                if len(found) >= MAX_DECISIONS:
                    break
        return tuple(found)

    async def step(self, tenant: str, complaint_id: str, step: Step, *, answer: str = "", actor: str = "") -> Complaint:
        complaint = await self.store.complaint(tenant, complaint_id)
        if complaint is None:
            raise CaseError(f"no complaint {complaint_id!r} in tenant {tenant}")
        updated = complaint.with_step(step, self._clock(), answer, by=actor)
        await self.store.update_complaint(updated)
        return updated

    async def due(self, tenant: str) -> list[tuple[Complaint, Step, datetime]]:
        now = self._clock()
        lapsing = [(c, step, at) for c in await self.store.complaints(tenant, limit=10_000)
                   for step, at in c.due_soon(self.sla, now)]
        for complaint, step, at in lapsing:
            log.warning("enforcement.complaint_due", tenant=tenant, complaint_id=complaint.id, step=step.value,
                        deadline=at.isoformat(), lapsed=at <= now)
        return lapsing


class AlertQueries(Protocol):
    def alerts(self, tenant: str, *, unacknowledged: bool = False, limit: int = 100) -> Sequence[Alert]: ...

    def acknowledge(self, tenant: str, alert_id: str, actor: str) -> Alert | None: ...


@dataclass
class _Kept:
    alert: Alert
    acknowledged_by: str = ""


class RecentAlerts:
    """The last ``capacity`` alerts, in memory (lost on restart: the analyser's own store is the record)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.capacity = capacity

    def add(self, alert: Alert) -> None:
        self._kept[alert.alert_id] = self._kept.get(alert.alert_id) or _Kept(alert)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)

    def alerts(self, tenant: str, *, unacknowledged: bool = False, limit: int = 100) -> Sequence[Alert]:
        kept = [k.alert for k in reversed(self._kept.values()) if k.alert.originator.tenant == tenant
                and not (unacknowledged and k.acknowledged_by)]
        return kept[:limit]

    def acknowledge(self, tenant: str, alert_id: str, actor: str) -> Alert | None:
        kept = self._kept.get(alert_id)
        if kept is None or kept.alert.originator.tenant != tenant:
            return None
        kept.acknowledged_by = kept.acknowledged_by or actor
        log.info("enforcement.alert_acknowledged", tenant=tenant, alert_id=alert_id, actor=actor)
        return kept.alert

    def acknowledged_by(self, alert_id: str) -> str:
        kept = self._kept.get(alert_id)
        return kept.acknowledged_by if kept else ""


@dataclass(frozen=True, slots=True)
class EnforcementDesk:
    """What the API, the CLI and the analyser reach enforcement through."""

    cases: Enforcement
    complaints: ComplaintDesk
    alerts: RecentAlerts

    async def on_alert(self, alert: Alert) -> None:
        """The analyser's callback: keep the alert for listing, and open or update its case."""
        self.alerts.add(alert)
        await self.cases.on_alert(alert)


def desk_of(settings: EnforcementSettings, tenants: Iterable[str], store: CaseStore, audit: AuditSource, *,
            clock: Callable[[], datetime], on_complaint: OnComplaint | None = None) -> EnforcementDesk:
    """Enforcement as ``[enforcement]`` configures it, on ``store``."""
    notice = settings.notice
    policy = Policy(
        notice_period=timedelta(seconds=settings.notice_period), auto_notice=settings.auto_notice,
        auto_suspend=settings.auto_suspend,
        restriction=Restriction(settings.restrict_per_minute, settings.restrict_concurrent),
        webhook_url=notice.webhook_url, provisioning_url=notice.provisioning_url,
    )
    notifier = WebhookNotifier(deadline=notice.deadline, attempts=notice.attempts, max_body_bytes=notice.max_body_bytes)
    service = Enforcement(store, policy, tenants=tenants, notifier=notifier, clock=clock)
    rules = settings.complaints
    sla = Sla(rules.forward_days, rules.answer_days, rules.inform_days, timedelta(hours=rules.warn_before_hours),
              calendar_of(rules.weekend_days, rules.holidays))
    desk = ComplaintDesk(store, audit, sla, clock=clock, on_complaint=on_complaint,
                         match_window=timedelta(seconds=rules.match_window_s), audit_scan=rules.audit_scan)
    return EnforcementDesk(service, desk, RecentAlerts())
