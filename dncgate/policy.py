"""``decide()``: the one pure function both switches share.

No I/O, no clock, no globals: the attempt and the store's facts in, a decision out. The order in
which rules apply is part of the contract: :data:`RULES` below, the one statement of it. The
README's "How a call is decided" table is checked against it, and ``decide()`` is checked to
follow it (tests/core/test_rule_order.py). The first rule that matches decides, with one twist:
calling hours (``outside_hours``) reject a marketing call that explicit consent or a clear callee
would allow; consent does not lift them. An expired or not-yet-valid consent counts as none.

In ``monitor`` mode every call is allowed and the would-be verdict is kept as ``outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from dncgate.hours import outside_hours
from dncgate.model import (
    ANALYTICS_REASONS,
    DECLINE_ALL,
    FAILURE_REASONS,
    NATIONAL_LIST,
    CallAttempt,
    ConsentStatus,
    Decision,
    Facts,
    FactsUnavailable,
    FailureAction,
    ListHit,
    ListPolicy,
    Mode,
    PortUse,
    Purpose,
    Reason,
    StaleAction,
    TenantPolicy,
    Verdict,
)
from dncgate.numbers import InvalidNumber, ShortNumber, Subscriber


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the decision order: when it applies, and the reason a decision by it carries."""

    when: str
    reason: Reason


RULES: tuple[Rule, ...] = (
    Rule("emergency or short service number", Reason.ALLOWED_EMERGENCY),
    Rule("the request names a tenant that is not configured, or a blank one", Reason.UNKNOWN_TENANT),
    Rule("the callee is not a valid number", Reason.INVALID_NUMBER),
    Rule("a message from a sender port not in the registry", Reason.UNKNOWN_SENDER_PORT),
    Rule("a marketing message from a port registered for service", Reason.SERVICE_PORT_MISUSE),
    Rule("the store could not answer in time", Reason.CHECK_FAILED),
    Rule("the originator is suspended", Reason.ORIGINATOR_SUSPENDED),
    Rule("the callee blocks this originator by name", Reason.SUBSCRIBER_BLOCK),
    Rule("service call", Reason.ALLOWED_SERVICE),
    Rule("the originator is restricted and over its marketing caps", Reason.ORIGINATOR_RESTRICTED),
    Rule("the callee withdrew consent from this entity", Reason.CONSENT_REVOKED),
    Rule("the callee declined this category, or all marketing", Reason.CATEGORY_DECLINED),
    Rule("explicit consent covering this category, in force", Reason.ALLOWED_CONSENT),
    Rule("a list the tenant needs has no live version", Reason.LIST_MISSING),
    Rule("national list older than the tenant allows", Reason.LIST_STALE),
    Rule("on the national list", Reason.NATIONAL_DNC),
    Rule("on the tenant's own list", Reason.TENANT_DNC),
    Rule("a prefix / range rule", Reason.PREFIX_RULE),
    Rule("opt-in tenant and no consent in force", Reason.NO_CONSENT),
    Rule("marketing outside the calling window in the callee's local time", Reason.OUTSIDE_HOURS),
    Rule("none of the above", Reason.ALLOWED_CLEAR),
)


def decide(attempt: CallAttempt, facts: Facts | FactsUnavailable) -> Decision:
    """The verdict for one call attempt, given what the store knows about it."""
    outcome, reason, hit, detail = _conclude(attempt, facts)
    tenant = attempt.tenant
    version = _version_checked(hit, facts)
    if outcome is Verdict.ALLOW or tenant.mode is Mode.MONITOR:
        return Decision(
            verdict=Verdict.ALLOW,
            outcome=outcome,
            reason=reason,
            mode=tenant.mode,
            list_name=hit.list_name if hit else None,
            list_version=version,
            detail=detail,
        )
    code = tenant.check_failed_sip_code if reason in FAILURE_REASONS else tenant.reject_sip_code
    if reason in ANALYTICS_REASONS:
        code = tenant.analytics_block.sip_code
    return Decision(
        verdict=Verdict.REJECT,
        outcome=Verdict.REJECT,
        reason=reason,
        mode=tenant.mode,
        list_name=hit.list_name if hit else None,
        list_version=version,
        sip_code=code,
        # a failed check: the callee declined nothing, so no "does not accept marketing calls"
        announcement=None if reason in FAILURE_REASONS else tenant.announcement_for(attempt.language),
        detail=detail,
    )


def _version_checked(hit: ListHit | None, facts: Facts | FactsUnavailable) -> str | None:
    if hit is not None:
        return hit.version
    if isinstance(facts, Facts) and facts.national_version:
        return facts.national_version
    return None


_Conclusion = tuple[Verdict, Reason, ListHit | None, str]


def _conclude(attempt: CallAttempt, facts: Facts | FactsUnavailable) -> _Conclusion:
    callee = attempt.callee
    marketing = attempt.purpose is Purpose.MARKETING
    if isinstance(callee, ShortNumber):
        return Verdict.ALLOW, Reason.ALLOWED_EMERGENCY, None, callee.kind.value
    if attempt.unknown_tenant is not None:
        return _on_failure(attempt, Reason.UNKNOWN_TENANT, _unknown_tenant_detail(attempt.unknown_tenant))
    if isinstance(callee, InvalidNumber):
        return _on_failure(attempt, Reason.INVALID_NUMBER, callee.detail)
    sender = attempt.sender
    if sender is not None and sender.registered_for is None:
        return _on_failure(attempt, Reason.UNKNOWN_SENDER_PORT, sender.number)
    if sender is not None and marketing and sender.registered_for is PortUse.SERVICE:
        return Verdict.REJECT, Reason.SERVICE_PORT_MISUSE, None, sender.number
    if isinstance(facts, FactsUnavailable):
        return _on_failure(attempt, Reason.CHECK_FAILED, facts.error)
    if facts.originator_suspended:
        return Verdict.REJECT, Reason.ORIGINATOR_SUSPENDED, None, ""
    if facts.subscriber_blocks_originator:
        return Verdict.REJECT, Reason.SUBSCRIBER_BLOCK, None, ""
    if not marketing:
        return Verdict.ALLOW, Reason.ALLOWED_SERVICE, None, ""
    if facts.originator_restricted:
        return Verdict.REJECT, Reason.ORIGINATOR_RESTRICTED, None, ""
    return _conclude_marketing(attempt, facts)


def _conclude_marketing(attempt: CallAttempt, facts: Facts) -> _Conclusion:
    conclusion = _conclude_consent_and_lists(attempt, facts)
    hours = attempt.tenant.hours
    if conclusion[0] is Verdict.ALLOW and hours is not None and isinstance(attempt.callee, Subscriber):
        why = outside_hours(hours, attempt.callee.e164[1:], attempt.at, geographical=attempt.callee.geographical)
        if why is not None:
            return Verdict.REJECT, Reason.OUTSIDE_HOURS, None, why
    return conclusion


def _conclude_consent_and_lists(attempt: CallAttempt, facts: Facts) -> _Conclusion:
    consent = facts.consent
    if consent is not None and consent.status is ConsentStatus.GRANTED and not consent.in_force(attempt.at):
        consent = None  # expired or not yet valid: as if there were none
    if consent is not None and consent.status is ConsentStatus.REVOKED:
        return Verdict.REJECT, Reason.CONSENT_REVOKED, None, consent.record_id
    category = attempt.category
    declined = facts.declined_categories
    if DECLINE_ALL in declined or (category is not None and category in declined):
        return Verdict.REJECT, Reason.CATEGORY_DECLINED, None, category or DECLINE_ALL
    if consent is not None and _consent_covers(consent.categories, category):
        return Verdict.ALLOW, Reason.ALLOWED_CONSENT, None, consent.record_id
    tenant = attempt.tenant
    if missing := missing_lists(tenant, facts):
        # whatever stale_action says: an empty store (a Redis restarted without its data, a new
        # file) would otherwise answer every call "not listed"
        return _on_failure(attempt, Reason.LIST_MISSING, "no live version of " + ", ".join(missing))
    if tenant.stale_action is StaleAction.REJECT and is_stale(facts.list_age, tenant.max_list_age):
        return Verdict.REJECT, Reason.LIST_STALE, None, f"national list is {facts.list_age} old"
    for hit, reason in (
        (facts.national, Reason.NATIONAL_DNC),
        (facts.tenant_list, Reason.TENANT_DNC),
        (facts.prefix_rule, Reason.PREFIX_RULE),
    ):
        if hit is not None:
            return Verdict.REJECT, reason, hit, hit.prefix or ""
    if attempt.tenant.list_policy is ListPolicy.OPT_IN:
        detail = "consent does not cover this category" if consent is not None else ""
        return Verdict.REJECT, Reason.NO_CONSENT, None, detail
    return Verdict.ALLOW, Reason.ALLOWED_CLEAR, None, ""


def missing_lists(tenant: TenantPolicy, facts: Facts) -> list[str]:
    """The lists of ``tenant.required_lists`` the store has no live version of."""
    versions = {NATIONAL_LIST: facts.national_version, tenant.own_list: facts.tenant_version}
    return [name for name in tenant.required_lists if not versions.get(name)]


def is_stale(age: timedelta | None, max_age: timedelta) -> bool:
    """A list of unknown age counts as stale: nothing says it was ever synced."""
    return age is None or age > max_age


def _consent_covers(categories: frozenset[str], category: str | None) -> bool:
    return not categories or (category is not None and category in categories)


def _unknown_tenant_detail(name: str) -> str:
    if not name.strip():
        return "the request's tenant is blank (a dialplan variable that came out empty: is func_uri loaded?)"
    return f"tenant {name[:64]!r} is not configured"


def _on_failure(attempt: CallAttempt, reason: Reason, detail: str) -> _Conclusion:
    tenant = attempt.tenant
    marketing = attempt.purpose is Purpose.MARKETING
    action = tenant.marketing_on_failure if marketing else tenant.service_on_failure
    verdict = Verdict.ALLOW if action is FailureAction.ALLOW else Verdict.REJECT
    return verdict, reason, None, detail
