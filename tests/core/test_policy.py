"""decide(): one row per rule of the documented order, plus modes, policies and failure handling."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dncgate.model import (
    FAILURE_REASONS,
    CallAttempt,
    ConsentFact,
    ConsentStatus,
    Decision,
    Facts,
    FactsUnavailable,
    FailureAction,
    ListHit,
    ListPolicy,
    Mode,
    Originator,
    Purpose,
    Reason,
    TenantPolicy,
    Verdict,
)
from dncgate.numbers import DialPlan, InvalidNumber, ShortKind, ShortNumber, Subscriber
from dncgate.policy import decide

TENANT = TenantPolicy(name="acme", dial_plan=DialPlan(region="CN"))
CALLEE = Subscriber("13800138000", "+8613800138000")
NATIONAL = ListHit("national", "7")
TENANT_HIT = ListHit("tenant:acme", "3")
RULE = ListHit("tenant:acme", "3", prefix="86138")
GRANTED = ConsentFact(ConsentStatus.GRANTED, record_id="c1")
REVOKED = ConsentFact(ConsentStatus.REVOKED, record_id="c2")


def attempt(
    purpose: Purpose = Purpose.MARKETING,
    tenant: TenantPolicy = TENANT,
    callee: Subscriber | ShortNumber | InvalidNumber = CALLEE,
    category: str | None = None,
) -> CallAttempt:
    return CallAttempt(
        tenant=tenant,
        originator=Originator(account="dialer-1", trunk="t1", caller_id="4001234567", entity="bank"),
        purpose=purpose,
        callee=callee,
        at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        category=category,
    )


def loaded(**changes: object) -> Facts:
    """What the store says with the national list loaded (version 7), and ``changes``."""
    return Facts(**({"national_version": "7"} | changes))  # type: ignore[arg-type]


# (name, attempt, facts, verdict, reason)
ORDER = [
    ("invalid marketing", attempt(callee=InvalidNumber("12", "too short")), loaded(), Verdict.REJECT,
     Reason.INVALID_NUMBER),
    ("invalid service", attempt(Purpose.SERVICE, callee=InvalidNumber("12", "too short")), loaded(), Verdict.ALLOW,
     Reason.INVALID_NUMBER),
    ("emergency beats a store failure", attempt(callee=ShortNumber("110", "110", ShortKind.EMERGENCY)),
     FactsUnavailable("redis down"), Verdict.ALLOW, Reason.ALLOWED_EMERGENCY),
    ("store down, marketing", attempt(), FactsUnavailable("timeout"), Verdict.REJECT, Reason.CHECK_FAILED),
    ("store down, service", attempt(Purpose.SERVICE), FactsUnavailable("timeout"), Verdict.ALLOW,
     Reason.CHECK_FAILED),
    ("suspended originator, even with consent", attempt(), loaded(originator_suspended=True, consent=GRANTED),
     Verdict.REJECT, Reason.ORIGINATOR_SUSPENDED),
    ("subscriber block stops a service call", attempt(Purpose.SERVICE), loaded(subscriber_blocks_originator=True),
     Verdict.REJECT, Reason.SUBSCRIBER_BLOCK),
    ("service to a listed callee", attempt(Purpose.SERVICE), loaded(national=NATIONAL), Verdict.ALLOW,
     Reason.ALLOWED_SERVICE),
    ("service under decline-all", attempt(Purpose.SERVICE), loaded(declined_categories=frozenset({"*"})),
     Verdict.ALLOW, Reason.ALLOWED_SERVICE),
    ("revoked consent beats everything else", attempt(), loaded(consent=REVOKED), Verdict.REJECT,
     Reason.CONSENT_REVOKED),
    ("category declined beats consent", attempt(category="finance"),
     loaded(consent=GRANTED, declined_categories=frozenset({"finance"})), Verdict.REJECT, Reason.CATEGORY_DECLINED),
    ("decline-all", attempt(category="travel"), loaded(declined_categories=frozenset({"*"})), Verdict.REJECT,
     Reason.CATEGORY_DECLINED),
    ("another category declined", attempt(category="travel"), loaded(declined_categories=frozenset({"finance"})),
     Verdict.ALLOW, Reason.ALLOWED_CLEAR),
    ("consent beats the national list", attempt(), loaded(consent=GRANTED, national=NATIONAL), Verdict.ALLOW,
     Reason.ALLOWED_CONSENT),
    ("consent for another category does not", attempt(category="travel"),
     loaded(consent=replace(GRANTED, categories=frozenset({"finance"})), national=NATIONAL), Verdict.REJECT,
     Reason.NATIONAL_DNC),
    ("national list", attempt(), loaded(national=NATIONAL, tenant_list=TENANT_HIT), Verdict.REJECT,
     Reason.NATIONAL_DNC),
    ("tenant list", attempt(), loaded(tenant_list=TENANT_HIT, prefix_rule=RULE), Verdict.REJECT,
     Reason.TENANT_DNC),
    ("prefix rule", attempt(), loaded(prefix_rule=RULE), Verdict.REJECT, Reason.PREFIX_RULE),
    ("clear", attempt(), loaded(national_version="7"), Verdict.ALLOW, Reason.ALLOWED_CLEAR),
    ("opt-in without consent", attempt(tenant=replace(TENANT, list_policy=ListPolicy.OPT_IN)), loaded(),
     Verdict.REJECT, Reason.NO_CONSENT),
    ("opt-in with consent", attempt(tenant=replace(TENANT, list_policy=ListPolicy.OPT_IN)), loaded(consent=GRANTED),
     Verdict.ALLOW, Reason.ALLOWED_CONSENT),
    ("opt-in, consent for another category", attempt(tenant=replace(TENANT, list_policy=ListPolicy.OPT_IN),
     category="food"), loaded(consent=replace(GRANTED, categories=frozenset({"finance"}))), Verdict.REJECT,
     Reason.NO_CONSENT),
    ("opt-in service call", attempt(Purpose.SERVICE, tenant=replace(TENANT, list_policy=ListPolicy.OPT_IN)),
     loaded(), Verdict.ALLOW, Reason.ALLOWED_SERVICE),
]


@pytest.mark.parametrize(("name", "call", "facts", "verdict", "reason"), ORDER, ids=[row[0] for row in ORDER])
def test_decision_order(
    name: str, call: CallAttempt, facts: Facts | FactsUnavailable, verdict: Verdict, reason: Reason
) -> None:
    decision = decide(call, facts)
    assert (decision.verdict, decision.reason) == (verdict, reason), name
    assert decision.outcome is verdict
    if verdict is Verdict.REJECT:
        assert decision.sip_code in {603, 607, 608}
        # a failed check is no "this number does not accept marketing calls": the callee declined nothing
        assert decision.announcement == (None if reason in FAILURE_REASONS else "dncgate/en/declined")
    else:
        assert decision.sip_code is None
        assert decision.announcement is None


def test_reject_carries_list_version_and_tenant_code() -> None:
    tenant = replace(TENANT, reject_sip_code=603, language="zh")
    decision = decide(attempt(tenant=tenant), loaded(national=NATIONAL, national_version="7"))
    assert decision == Decision(
        verdict=Verdict.REJECT, outcome=Verdict.REJECT, reason=Reason.NATIONAL_DNC, mode=Mode.ENFORCE,
        list_name="national", list_version="7", sip_code=603, announcement="dncgate/zh/declined",
    )


def test_clear_decision_records_the_national_version_checked() -> None:
    decision = decide(attempt(), loaded(national_version="42"))
    assert decision.list_version == "42"
    assert decision.list_name is None


def test_check_failure_uses_its_own_code_and_detail() -> None:
    decision = decide(attempt(tenant=replace(TENANT, check_failed_sip_code=608)), FactsUnavailable("redis timeout"))
    assert decision.sip_code == 608
    assert decision.detail == "redis timeout"


def test_fail_open_is_configurable_for_marketing() -> None:
    tenant = replace(TENANT, marketing_on_failure=FailureAction.ALLOW)
    decision = decide(attempt(tenant=tenant), FactsUnavailable("timeout"))
    assert decision.verdict is Verdict.ALLOW
    assert decision.reason is Reason.CHECK_FAILED


def test_service_fail_closed_is_configurable() -> None:
    tenant = replace(TENANT, service_on_failure=FailureAction.REJECT)
    decision = decide(attempt(Purpose.SERVICE, tenant=tenant), FactsUnavailable("timeout"))
    assert decision.verdict is Verdict.REJECT


def test_monitor_mode_allows_and_keeps_the_would_be_verdict() -> None:
    tenant = replace(TENANT, mode=Mode.MONITOR)
    decision = decide(attempt(tenant=tenant), loaded(national=NATIONAL))
    assert decision.verdict is Verdict.ALLOW
    assert decision.outcome is Verdict.REJECT
    assert decision.reason is Reason.NATIONAL_DNC
    assert decision.mode is Mode.MONITOR
    assert decision.sip_code is None


def test_tenant_announcement_template() -> None:
    tenant = replace(TENANT, announcement="dncgate/{tenant}/{language}/declined")
    decision = decide(attempt(tenant=tenant), loaded(national=NATIONAL))
    assert decision.announcement == "dncgate/acme/en/declined"


def test_stale_list_rejects_marketing_only_when_the_tenant_says_so() -> None:
    from datetime import timedelta

    from dncgate.model import StaleAction

    strict = replace(TENANT, stale_action=StaleAction.REJECT, max_list_age=timedelta(days=28))
    old = loaded(list_age=timedelta(days=29))
    fresh = loaded(list_age=timedelta(days=2))
    assert decide(attempt(tenant=strict), old).reason is Reason.LIST_STALE
    assert decide(attempt(tenant=strict), loaded()).reason is Reason.LIST_STALE  # never synced
    assert decide(attempt(tenant=strict), fresh).reason is Reason.ALLOWED_CLEAR
    assert decide(attempt(Purpose.SERVICE, tenant=strict), old).reason is Reason.ALLOWED_SERVICE
    assert decide(attempt(tenant=strict), replace(old, consent=GRANTED)).reason is Reason.ALLOWED_CONSENT
    assert decide(attempt(), old).reason is Reason.ALLOWED_CLEAR  # default: alarm only


def test_a_missing_national_list_is_a_failed_check_for_marketing_whatever_stale_action_says() -> None:
    empty = Facts()  # a Redis restarted without its data, a new SQLite file: no live version
    decision = decide(attempt(), empty)
    assert (decision.verdict, decision.reason, decision.sip_code) == (Verdict.REJECT, Reason.LIST_MISSING, 603)
    assert decision.announcement is None  # the callee declined nothing
    assert decision.detail == "no live version of national"
    assert decide(attempt(Purpose.SERVICE), empty).reason is Reason.ALLOWED_SERVICE
    assert decide(attempt(), replace(empty, consent=GRANTED)).reason is Reason.ALLOWED_CONSENT
    assert decide(attempt(category="food"), replace(empty, declined_categories=frozenset({"*"}))).reason is (
        Reason.CATEGORY_DECLINED)
    # the tenant's own failure policy, said out loud: marketing_on_failure = "allow" lets it through
    lenient = replace(TENANT, marketing_on_failure=FailureAction.ALLOW)
    assert (decide(attempt(tenant=lenient), empty).verdict, decide(attempt(tenant=lenient), empty).reason) == (
        Verdict.ALLOW, Reason.LIST_MISSING)
    assert decide(attempt(tenant=replace(TENANT, mode=Mode.MONITOR)), empty).outcome is Verdict.REJECT


def test_a_tenant_that_uses_only_its_own_list_needs_that_one() -> None:
    own_only = replace(TENANT, required_lists=("tenant:acme",))
    assert decide(attempt(tenant=own_only), Facts(tenant_version="3")).reason is Reason.ALLOWED_CLEAR
    missing = decide(attempt(tenant=own_only), Facts(national_version="7"))
    assert (missing.reason, missing.detail) == (Reason.LIST_MISSING, "no live version of tenant:acme")
    both = replace(TENANT, required_lists=("national", "tenant:acme"))
    assert decide(attempt(tenant=both), Facts(national_version="7")).reason is Reason.LIST_MISSING
    assert decide(attempt(tenant=both), Facts(national_version="7", tenant_version="3")).reason is (
        Reason.ALLOWED_CLEAR)
    assert decide(attempt(tenant=replace(TENANT, required_lists=())), Facts()).reason is Reason.ALLOWED_CLEAR
