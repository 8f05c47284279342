"""Enforcement: alerts open cases; operators (and the scheduler) move them; every step is recorded.

``on_alert`` is what the early-warning analyser calls. ``act`` takes an operator's action on a case
(checked by ``machine.check``), seals it onto the case's chain and writes it through the case
store; with an idempotency key, a step replayed after a restart is found and not applied twice.
A suspension asked for inside the notice period is recorded as scheduled and applied by ``tick``
(the scheduler) once the period has run, unless it is urgent with a written reason. A notice, a
restriction and a suspension each send their webhook in the background; the delivery is recorded
as its own transition (``drain`` waits for them). Every time it records or compares (a step's
``at``, the notice period's end) is read from ``clock``: the app's (``App.clock``), never its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from dncgate.clock import Clock
from dncgate.early_warning.alerts import Alert, OriginatorKey, Severity
from dncgate.enforcement import machine
from dncgate.enforcement.model import (
    GENESIS,
    Case,
    CaseAction,
    CaseState,
    Standing,
    Transition,
    checked_text,
    standing_key,
)
from dncgate.enforcement.notices import Delivery, Notifier
from dncgate.enforcement.protocol import CaseConflict, CaseStore
from dncgate.errors import CaseError, EnforcementError
from dncgate.model import Restriction
from dncgate.settings.enforcement import EnforcementSettings

log = structlog.get_logger("dncgate.enforcement")
_SETTINGS = EnforcementSettings()  # the defaults, written once in the schema
_ATTEMPTS = 5  # a conflicting writer (another gate, the scheduler) makes a step redo on the new head


class UnknownCase(EnforcementError):
    """No case with that id in the caller's tenant."""


@dataclass(frozen=True, slots=True)
class Policy:
    """What enforcement does on its own, and with what (from ``[enforcement]``)."""

    notice_period: timedelta = timedelta(seconds=_SETTINGS.notice_period)
    auto_notice: bool = _SETTINGS.auto_notice
    auto_suspend: bool = _SETTINGS.auto_suspend
    restriction: Restriction = field(default_factory=lambda: Restriction(_SETTINGS.restrict_per_minute,
                                                                         _SETTINGS.restrict_concurrent))
    webhook_url: str = _SETTINGS.notice.webhook_url
    provisioning_url: str = _SETTINGS.notice.provisioning_url


@dataclass(frozen=True, slots=True)
class Step:
    case: Case
    transition: Transition
    replayed: bool


class Enforcement:
    def __init__(self, store: CaseStore, policy: Policy, *, tenants: Iterable[str], clock: Clock,
                 notifier: Notifier | None = None) -> None:
        self.store, self.policy, self.tenants = store, policy, tuple(tenants)
        self.notifier = notifier
        self._clock = clock
        self._deliveries: set[asyncio.Task[None]] = set()

    # -- alerts -------------------------------------------------------------------------------

    async def on_alert(self, alert: Alert) -> Step | None:
        """Open or update the originator's case (None for a report-only rule or an unknown tenant)."""
        origin = alert.originator
        if alert.report_only or origin.tenant not in self.tenants:
            log.info("enforcement.alert_not_acted", alert_id=alert.alert_id, report_only=alert.report_only,
                     tenant=origin.tenant)
            return None
        evidence = alert.as_dict()
        key = f"alert:{alert.alert_id}"
        for _ in range(_ATTEMPTS):
            case = await self.store.open_case(origin)
            try:
                if case is None:
                    step = await self._open(origin, key, evidence, alert)
                else:
                    why = f"rule {alert.rule} ({alert.severity})"
                    step = await self._step(case, CaseAction.ALERT, "analytics", why, key, evidence=evidence)
                break
            except CaseConflict:
                continue
        else:
            raise CaseConflict(f"{origin}: the case kept moving while the alert was recorded")
        if alert.severity is Severity.CRITICAL and not step.replayed:
            step = await self._escalate(step, alert)
        return step

    async def _open(self, origin: OriginatorKey, key: str, evidence: dict[str, Any], alert: Alert) -> Step:
        replay = await self.store.transition_by_key(origin.tenant, key)
        if replay is not None:
            return await self._replayed(replay)
        first = Transition(
            tenant=origin.tenant, case_id=f"case-{alert.alert_id}"[:80], action=CaseAction.OPEN, actor="analytics",
            reason=f"rule {alert.rule} ({alert.severity})", state_from=None, state_to=CaseState.OPEN,
            at=self._clock(), idempotency_key=key, originator=standing_key(origin), evidence=evidence,
        ).sealed(1, GENESIS)
        case = machine.opened(origin, first)
        stored, replayed = await self.store.append(first, case)
        log.info("enforcement.case_opened", case_id=case.case_id, originator=str(origin), alert_id=alert.alert_id)
        return Step(case, stored, replayed)

    async def _escalate(self, step: Step, alert: Alert) -> Step:
        """A critical alert: the notice (auto_notice), then a scheduled suspension (auto_suspend)."""
        case = step.case
        if self.policy.auto_notice and case.state in (CaseState.OPEN, CaseState.WARNED):
            step = await self._step(case, CaseAction.NOTICE, "analytics", f"critical alert {alert.rule}",
                                    f"auto-notice:{case.case_id}", evidence={"alert_id": alert.alert_id})
            case = step.case
        due = machine.suspension_due(case, self.policy.notice_period)
        if self.policy.auto_suspend and due is not None and case.suspend_at is None and \
                case.state in (CaseState.NOTICED, CaseState.RESTRICTED):
            step = await self._step(case, CaseAction.SCHEDULE_SUSPENSION, "analytics",
                                    f"critical alert {alert.rule}: suspension after the notice period",
                                    f"auto-schedule:{case.case_id}", effective_at=due)
        return step

    # -- operators ----------------------------------------------------------------------------

    async def case(self, tenant: str, case_id: str) -> Case:
        case = await self.store.case(tenant, case_id)
        if case is None:
            raise UnknownCase(f"no case {case_id!r} in tenant {tenant}")
        return case

    async def act(self, tenant: str, case_id: str, action: CaseAction, *, actor: str, reason: str,
                  urgent: bool = False, key: str | None = None, restriction: Restriction | None = None,
                  evidence: dict[str, Any] | None = None, schedule: bool = True) -> Step:
        """Take ``action`` on the case. Raises ``UnknownCase``, ``CaseError`` (not allowed, and why).

        ``schedule=False``: a suspension asked for inside the notice period is refused (``CaseError``
        naming when the period ends) instead of being scheduled for then."""
        if action not in machine.ACTIONS or action in (CaseAction.DELIVERY, CaseAction.ALERT):
            raise CaseError(f"{action.value} is recorded by dncgate itself, not asked for")
        if urgent and not reason.strip():
            raise CaseError("an urgent action needs a written reason")
        checked_text("reason", reason)
        checked_text("actor", actor)
        case = await self.case(tenant, case_id)
        key = key or f"{actor}:{action.value}:{self._clock().isoformat()}:{case.seq}"
        if action is CaseAction.SUSPEND and urgent and case.noticed_at is None:
            notice = await self._step(case, CaseAction.NOTICE, actor, f"urgent suspension: {reason}", f"{key}:notice",
                                      urgent=True)
            case = notice.case
        if action is CaseAction.SUSPEND and not urgent and schedule:
            due = machine.suspension_due(case, self.policy.notice_period)
            if due is not None and self._clock() < due:  # recorded now, applied by the scheduler after the period
                return await self._step(case, CaseAction.SCHEDULE_SUSPENSION, actor, reason, key, effective_at=due,
                                        evidence=evidence)
        if action is CaseAction.RESTRICT:
            restriction = restriction or self.policy.restriction
        return await self._step(case, action, actor, reason, key, urgent=urgent, restriction=restriction,
                                evidence=evidence)

    async def tick(self) -> list[Step]:
        """Apply every scheduled suspension whose time has come (the scheduler calls this)."""
        now = self._clock()
        applied: list[Step] = []
        for tenant in self.tenants:
            for state in (CaseState.NOTICED, CaseState.RESTRICTED, CaseState.UPHELD):
                for case in await self.store.cases(tenant, state=state, limit=10_000):
                    if case.suspend_at is not None and case.suspend_at <= now:
                        applied.append(await self._step(
                            case, CaseAction.SUSPEND, "scheduler", "the notice period has run",
                            f"scheduled-suspension:{case.case_id}:{case.suspend_at.isoformat()}"))
        return applied

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """``tick`` every ``interval`` seconds until ``stop`` is set; a failed tick is logged, not fatal."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 -- a store outage must not end the scheduler
                log.error("enforcement.tick_failed", error=str(exc), error_type=type(exc).__name__)
            try:
                async with asyncio.timeout(interval):
                    await stop.wait()
            except TimeoutError:
                pass

    # -- the one way a step is taken ----------------------------------------------------------

    async def _step(self, case: Case, action: CaseAction, actor: str, reason: str, key: str, *,
                    urgent: bool = False, effective_at: datetime | None = None,
                    restriction: Restriction | None = None, evidence: dict[str, Any] | None = None) -> Step:
        for _ in range(_ATTEMPTS):
            replay = await self.store.transition_by_key(case.tenant, key)
            if replay is not None:
                return await self._replayed(replay)
            now = self._clock()
            machine.check(case, action, at=now, notice_period=self.policy.notice_period, urgent=urgent,
                          reason=reason)
            caps = None
            if restriction is not None and action is CaseAction.RESTRICT:
                caps = Restriction(restriction.per_minute, restriction.concurrent, case.key)
            step = Transition(
                tenant=case.tenant, case_id=case.case_id, action=action, actor=actor, reason=reason,
                state_from=case.state, state_to=machine.target(case, action), at=now, idempotency_key=key,
                originator=case.key, evidence=evidence or {}, urgent=urgent, effective_at=effective_at,
                restriction=caps,
            ).sealed(case.seq + 1, case.head_hash)
            after = machine.apply(case, step)
            try:
                stored, replayed = await self.store.append(step, after)
            except CaseConflict:
                case = await self.case(case.tenant, case.case_id)
                continue
            if replayed:
                return await self._replayed(stored)
            log.info("enforcement.case_step", case_id=case.case_id, action=action.value, actor=actor,
                     state=after.state.value, standing=after.standing.value, urgent=urgent)
            self._after(after, stored)
            return Step(after, stored, False)
        raise CaseConflict(f"case {case.case_id}: kept moving while {action.value} was recorded")

    async def _replayed(self, stored: Transition) -> Step:
        return Step(await self.case(stored.tenant, stored.case_id), stored, True)

    # -- webhooks -----------------------------------------------------------------------------

    def _after(self, case: Case, step: Transition) -> None:
        url, kind = "", ""
        if step.action is CaseAction.NOTICE:
            url, kind = self.policy.webhook_url, "notice"
        elif step.action in (CaseAction.RESTRICT, CaseAction.SUSPEND):
            url, kind = self.policy.provisioning_url, "stop_new_numbers"
        elif step.action in (CaseAction.REINSTATE, CaseAction.LIFT) and case.standing is Standing.CLEAR:
            url, kind = self.policy.provisioning_url, "resume_new_numbers"
        if not url or self.notifier is None:
            return
        task = asyncio.create_task(self._deliver(case, step, url, kind))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, case: Case, step: Transition, url: str, kind: str) -> None:
        assert self.notifier is not None  # checked by _after
        payload = {"kind": kind, "case": case.as_dict(), "transition": step.as_dict(),
                   "notice_period_s": self.policy.notice_period.total_seconds(),
                   "suspension_due": (machine.suspension_due(case, self.policy.notice_period) or step.at).isoformat()}
        try:
            delivery = await self.notifier.post(url, payload)
        except Exception as exc:  # noqa: BLE001 -- recorded as a failed delivery
            delivery = Delivery(url, None, 0, f"{type(exc).__name__}: {exc}"[:300])
        try:
            latest = await self.case(case.tenant, case.case_id)
            outcome = "delivered" if delivery.delivered else "failed"
            await self._step(latest, CaseAction.DELIVERY, "dncgate", f"{kind} {outcome}", f"delivery:{step.id}",
                             evidence={"kind": kind, "of": step.id, **delivery.as_dict()})
        except Exception as exc:  # noqa: BLE001 -- a store outage: logged with what was delivered
            log.error("enforcement.delivery_not_recorded", case_id=case.case_id, error=str(exc), **delivery.as_dict())

    async def drain(self) -> None:
        """Wait for every webhook in flight and its delivery record (tests, shutdown)."""
        while self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
