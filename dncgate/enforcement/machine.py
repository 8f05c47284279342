"""Which action a case's state allows, and the case a transition leaves: pure, no I/O, no clock.

::

    open -> warned -> noticed -> restricted -> suspended -> appealed -> reinstated | upheld -> closed

``check()`` refuses what the state does not allow (``CaseError``, saying why), including a
suspension before the notice period has run, unless it is urgent with a written reason.
``apply()`` folds a sealed transition into the case. A case is closed only with its standing clear
(lift a measure first), so the standing set never keeps an originator no open case accounts for.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from dncgate.early_warning.alerts import OriginatorKey
from dncgate.enforcement.model import Case, CaseAction, CaseState, Standing, Transition
from dncgate.errors import CaseError

S = CaseState
_LIVE = frozenset(S) - {S.CLOSED}
# action -> the states it may be taken from; URGENT_FROM widens that for an urgent action.
ALLOWED_FROM: dict[CaseAction, frozenset[CaseState]] = {
    CaseAction.ALERT: _LIVE,
    CaseAction.WARN: frozenset({S.OPEN}),
    CaseAction.NOTICE: frozenset({S.OPEN, S.WARNED, S.NOTICED, S.RESTRICTED}),
    CaseAction.DELIVERY: frozenset(S),
    CaseAction.RESTRICT: frozenset({S.NOTICED, S.UPHELD}),
    CaseAction.SCHEDULE_SUSPENSION: frozenset({S.NOTICED, S.RESTRICTED, S.UPHELD}),
    CaseAction.SUSPEND: frozenset({S.NOTICED, S.RESTRICTED, S.UPHELD}),
    CaseAction.APPEAL: frozenset({S.NOTICED, S.RESTRICTED, S.SUSPENDED}),
    CaseAction.REINSTATE: frozenset({S.APPEALED}),
    CaseAction.UPHOLD: frozenset({S.APPEALED}),
    CaseAction.LIFT: frozenset({S.RESTRICTED, S.SUSPENDED, S.UPHELD}),
    CaseAction.CLOSE: frozenset({S.OPEN, S.WARNED, S.NOTICED, S.REINSTATED, S.UPHELD}),
    CaseAction.NOTE: frozenset(S),
}
URGENT_FROM: dict[CaseAction, frozenset[CaseState]] = {
    CaseAction.RESTRICT: frozenset({S.OPEN, S.WARNED}),
    CaseAction.SUSPEND: frozenset({S.OPEN, S.WARNED}),
}
_TARGET: dict[CaseAction, CaseState] = {
    CaseAction.WARN: S.WARNED, CaseAction.RESTRICT: S.RESTRICTED, CaseAction.SUSPEND: S.SUSPENDED,
    CaseAction.APPEAL: S.APPEALED, CaseAction.REINSTATE: S.REINSTATED, CaseAction.UPHOLD: S.UPHELD,
    CaseAction.LIFT: S.REINSTATED, CaseAction.CLOSE: S.CLOSED,
}
ACTIONS = frozenset(ALLOWED_FROM)  # what an operator may ask for (OPEN comes from an alert)


def target(case: Case, action: CaseAction) -> CaseState:
    """The state ``action`` leaves ``case`` in (it must be allowed: see ``check``)."""
    if action is CaseAction.NOTICE and case.state in (S.OPEN, S.WARNED):
        return S.NOTICED
    return _TARGET.get(action, case.state)


def check(case: Case, action: CaseAction, *, at: datetime, notice_period: timedelta, urgent: bool,
          reason: str) -> None:
    """Raise ``CaseError`` unless ``action`` may be taken on ``case`` at ``at``."""
    if action is CaseAction.OPEN:
        raise CaseError(f"case {case.case_id} is already open for {case.originator}")
    allowed = ALLOWED_FROM[action] | (URGENT_FROM.get(action, frozenset()) if urgent else frozenset())
    if case.state not in allowed:
        if case.state is S.CLOSED:
            raise CaseError(f"case {case.case_id} is closed: {action.value} is not possible (open a new case)")
        states = ", ".join(sorted(s.value for s in allowed))
        raise CaseError(f"case {case.case_id} is {case.state.value}: {action.value} needs one of {states}")
    if urgent and not reason.strip():
        raise CaseError("an urgent action needs a written reason")
    if action is CaseAction.CLOSE and case.standing is not Standing.CLEAR:
        raise CaseError(f"case {case.case_id} still {case.standing.value}s its originator: lift it before closing")
    if action is CaseAction.SUSPEND and not urgent:
        due = suspension_due(case, notice_period)
        if due is None:
            raise CaseError(f"case {case.case_id}: no notice sent yet; a suspension follows a notice")
        if at < due:
            raise CaseError(f"case {case.case_id}: the notice period runs until {due.isoformat()} "
                            "(schedule the suspension, or mark it urgent with a reason)")


def suspension_due(case: Case, notice_period: timedelta) -> datetime | None:
    """When a suspension may take effect: the notice period after the first notice (None: no notice)."""
    return None if case.noticed_at is None else case.noticed_at + notice_period


def opened(originator: OriginatorKey, first: Transition) -> Case:
    """The case an ``open`` transition starts."""
    return Case(
        tenant=originator.tenant, case_id=first.case_id, originator=originator, state=S.OPEN,
        standing=Standing.CLEAR, opened_at=first.at, updated_at=first.at, seq=first.seq, head_hash=first.hash,
        alerts=1,
    )


def apply(case: Case, step: Transition) -> Case:
    """The case after ``step`` (sealed, already checked)."""
    changes: dict[str, object] = {
        "state": step.state_to, "updated_at": step.at, "seq": step.seq, "head_hash": step.hash,
    }
    action = step.action
    if action is CaseAction.ALERT:
        changes["alerts"] = case.alerts + 1
    elif action is CaseAction.NOTICE and case.noticed_at is None:
        changes["noticed_at"] = step.at
    elif action is CaseAction.RESTRICT:
        changes.update(standing=Standing.RESTRICTED, restriction=step.restriction)
    elif action is CaseAction.SCHEDULE_SUSPENSION:
        changes["suspend_at"] = step.effective_at
    elif action is CaseAction.SUSPEND:
        changes.update(standing=Standing.SUSPENDED, suspend_at=None)
    elif action is CaseAction.APPEAL:
        changes["before_appeal"] = case.state
    elif action in (CaseAction.REINSTATE, CaseAction.LIFT):
        changes.update(standing=Standing.CLEAR, restriction=None, suspend_at=None, before_appeal=None)
    return replace(case, **changes)  # type: ignore[arg-type]  # keys are Case fields (above)
