"""One stream of call facts: the gate's decisions and the switches' call records, keyed per tenant.

:meth:`Signals.decision` turns a decision (``gate.CheckResult``) into an analyser *attempt*,
keyed by the field the tenant names (``[early_warning.tenants.NAME] key``: account, trunk, caller
ID or entity) and handed to a sink (the analyser, or the producer of the Redis streams that
several gates' analysers share: ``early_warning.facts``). :meth:`Signals.call` turns a feed's
``CallRecord`` into an *end*. A call record carries the account and the caller ID but no tenant,
trunk or entity: the originator a decision of this gate had for the same (account, caller ID) is
remembered (bounded) and used; a record nobody decided here goes to the default tenant when its
key is the account or the caller ID, else it is counted as unkeyed (``Analyser.unkeyed``).

An attempt counts as *refused* when the policy's outcome was reject for a list, consent, hours
or a subscriber's choice (``REFUSED``), not for a failed check or for enforcement's own block (an
originator already suspended must not keep feeding its own evidence).
"""

from __future__ import annotations

from typing import Protocol

from dncgate.early_warning.alerts import OriginatorKind
from dncgate.early_warning.facts import FactSink
from dncgate.events import CallRecord
from dncgate.model import CallAttempt, Decision, Originator, Purpose, Reason, Verdict
from dncgate.numbers import ShortNumber, Subscriber


class DecidedCall(Protocol):
    """What the gate hands its observers (``gate.CheckResult``)."""

    @property
    def attempt(self) -> CallAttempt: ...

    @property
    def decision(self) -> Decision: ...

    @property
    def decision_id(self) -> str: ...


REFUSED = frozenset({
    Reason.NATIONAL_DNC, Reason.TENANT_DNC, Reason.PREFIX_RULE, Reason.NO_CONSENT, Reason.CONSENT_REVOKED,
    Reason.CATEGORY_DECLINED, Reason.SUBSCRIBER_BLOCK, Reason.OUTSIDE_HOURS, Reason.LIST_STALE,
})
MAX_OWNERS = 100_000


def key_of(kind: OriginatorKind, originator: Originator) -> str:
    if kind is OriginatorKind.ACCOUNT:
        return originator.account
    if kind is OriginatorKind.TRUNK:
        return originator.trunk
    if kind is OriginatorKind.CALLER_ID:
        return originator.caller_id
    return originator.entity


class Signals:
    def __init__(self, analyser: FactSink, *, default_tenant: str = "default") -> None:
        self.analyser = analyser
        self.default_tenant = default_tenant
        self._owners: dict[tuple[str, str], tuple[str, str]] = {}  # (account, caller ID) -> (tenant, key)

    def decision(self, result: DecidedCall) -> None:
        """A gate decision (``Gate.observers`` calls this after the verdict went out)."""
        attempt = result.attempt
        tenant = attempt.tenant.name
        watch = self.analyser.watch(tenant)
        if watch is None:
            self.analyser.unkeyed += 1
            return
        origin = attempt.originator
        value = key_of(watch.key, origin)
        callee = attempt.callee
        digits = callee.digits if isinstance(callee, Subscriber) else \
            int(callee.digits) if isinstance(callee, ShortNumber) and callee.digits.isdigit() else 0
        decision = result.decision
        refused = decision.outcome is Verdict.REJECT and decision.reason in REFUSED
        self.analyser.attempt(tenant, value, attempt.at.timestamp(), digits, refused,
                              decision.verdict is Verdict.ALLOW, attempt.purpose is Purpose.SERVICE,
                              origin.caller_id, result.decision_id)
        if value and (origin.account or origin.caller_id):
            owners = self._owners
            owners[(origin.account, origin.caller_id)] = (tenant, value)
            if len(owners) > MAX_OWNERS:
                del owners[next(iter(owners))]

    def call(self, record: CallRecord) -> None:
        """A switch's record of a call that ended."""
        owner = self._owners.get((record.account, record.originator))
        if owner is None:
            watch = self.analyser.watch(self.default_tenant)
            if watch is None or watch.key not in (OriginatorKind.ACCOUNT, OriginatorKind.CALLER_ID):
                self.analyser.unkeyed += 1
                return
            value = record.account if watch.key is OriginatorKind.ACCOUNT else record.originator
            owner = (self.default_tenant, value)
        self.analyser.ended(owner[0], owner[1], record.end.timestamp(), record.answer is not None,
                            float(record.billsec), record.call_id)
