"""The complaint desk and the alert book: what the API and the CLI act on besides cases.

``ComplaintDesk.file`` checks a complaint, matches it to the gate's decisions in the audit (same
tenant, the originator's caller ID, the complainant as callee, within ``match_window`` of the
call), stores it (idempotent by id) and reports it as a signal (``on_complaint``, for the early
warning's complaints-per-1,000-calls). ``due`` lists the SLA steps about to lapse (logged).

``RecentAlerts`` keeps the last alerts in memory for listing and acknowledgement when the early
warning is off; with it, its SQLite store is the ``AlertBook``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
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


class AlertBook(Protocol):
    """Where alerts are kept for listing and acknowledgement (``RecentAlerts`` in memory; the early
    warning's ``store.sqlite.early_warning`` on disk, shared with ``dncgate alerts``)."""

    async def add(self, alert: Alert) -> bool: ...

    async def alerts(self, tenant: str, *, unacknowledged: bool = False,
                     limit: int = 100) -> list[tuple[Alert, str]]:
        """Newest first, each with who acknowledged it ("" if nobody yet)."""
        ...

    async def acknowledge(self, tenant: str, alert_id: str, actor: str) -> tuple[Alert, str] | None: ...


@dataclass
class _Kept:
    alert: Alert
    acknowledged_by: str = ""


class RecentAlerts:
    """The last ``capacity`` alerts, in memory (lost on restart; without [early_warning] enabled)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.capacity = capacity

    async def add(self, alert: Alert) -> bool:
        if alert.alert_id in self._kept:
            return False
        self._kept[alert.alert_id] = _Kept(alert)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return True

    async def alerts(self, tenant: str, *, unacknowledged: bool = False,
                     limit: int = 100) -> list[tuple[Alert, str]]:
        kept = [(k.alert, k.acknowledged_by) for k in reversed(self._kept.values())
                if k.alert.originator.tenant == tenant and not (unacknowledged and k.acknowledged_by)]
        return kept[:limit]

    async def acknowledge(self, tenant: str, alert_id: str, actor: str) -> tuple[Alert, str] | None:
        kept = self._kept.get(alert_id)
        if kept is None or kept.alert.originator.tenant != tenant:
            return None
        kept.acknowledged_by = kept.acknowledged_by or actor
        log.info("enforcement.alert_acknowledged", tenant=tenant, alert_id=alert_id, actor=actor)
        return kept.alert, kept.acknowledged_by


@dataclass(frozen=True, slots=True)
class EnforcementDesk:
    """What the API, the CLI and the analyser reach enforcement through."""

    cases: Enforcement
    complaints: ComplaintDesk
    alerts: AlertBook

    async def on_alert(self, alert: Alert) -> None:
        """The analyser's callback: keep the alert for listing, and open or update its case (an
        alert already kept, raised again after a restart, is handed on too: the case step is
        idempotent by the alert's id)."""
        await self.alerts.add(alert)
        await self.cases.on_alert(alert)


def desk_of(settings: EnforcementSettings, tenants: Iterable[str], store: CaseStore, audit: AuditSource, *,
            clock: Callable[[], datetime], on_complaint: OnComplaint | None = None,
            alerts: AlertBook | None = None) -> EnforcementDesk:
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
    return EnforcementDesk(service, desk, alerts if alerts is not None else RecentAlerts())
