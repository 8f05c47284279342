"""decide(): every ordering conflict between the consent ledger, preferences, lists and calling hours.

One row per conflict; each row names both sides and which one wins. Times are fixed instants, and
the callee is in Shanghai (UTC+8, no DST), so "inside" and "outside" hours are exact.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dncgate.hours import CallingHours
from dncgate.model import (
    CallAttempt,
    ConsentFact,
    ConsentStatus,
    Facts,
    ListHit,
    ListPolicy,
    Mode,
    Originator,
    Purpose,
    Reason,
    TenantPolicy,
    Verdict,
)
from dncgate.numbers import DialPlan, Subscriber
from dncgate.policy import decide

DAY = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # Thursday 11:00 in Shanghai
NIGHT = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # Thursday 22:00 in Shanghai
TENANT = TenantPolicy(name="acme", dial_plan=DialPlan(region="CN"), hours=CallingHours())
OPT_IN = replace(TENANT, list_policy=ListPolicy.OPT_IN)
CALLEE = Subscriber("13800138000", "+8613800138000")
NATIONAL = ListHit("national", "7")
TENANT_LIST = ListHit("tenant:acme", "2")
RULE = ListHit("tenant:acme", "2", prefix="86138")
GRANTED = ConsentFact(ConsentStatus.GRANTED, record_id="c-1")
FINANCE_ONLY = replace(GRANTED, categories=frozenset({"finance"}))
REVOKED = ConsentFact(ConsentStatus.REVOKED, record_id="c-2")
EXPIRED = replace(GRANTED, expires_at=DAY - timedelta(seconds=1))
NOT_YET = replace(GRANTED, valid_from=DAY + timedelta(days=1))
DECLINE_ALL = frozenset({"*"})


def loaded(**changes: object) -> Facts:
    """What the store says with the national list loaded (version 7), and ``changes``."""
    return Facts(**({"national_version": "7"} | changes))  # type: ignore[arg-type]


def call(
    purpose: Purpose = Purpose.MARKETING, *, at: datetime = DAY, category: str | None = "finance",
    tenant: TenantPolicy = TENANT,
) -> CallAttempt:
    return CallAttempt(
        tenant=tenant, originator=Originator(entity="bank-1"), purpose=purpose, callee=CALLEE, at=at,
        category=category,
    )


# (conflict, attempt, facts, verdict, reason)
CONFLICTS = [
    # consent vs the national list, the tenant's list and prefix rules
    ("consent beats the national list", call(), loaded(consent=GRANTED, national=NATIONAL),
     Verdict.ALLOW, Reason.ALLOWED_CONSENT),
    ("consent beats the tenant list", call(), loaded(consent=GRANTED, tenant_list=TENANT_LIST),
     Verdict.ALLOW, Reason.ALLOWED_CONSENT),
    ("consent beats a prefix rule", call(), loaded(consent=GRANTED, prefix_rule=RULE), Verdict.ALLOW,
     Reason.ALLOWED_CONSENT),
    ("consent in another category loses to the list", call(category="travel"),
     loaded(consent=FINANCE_ONLY, national=NATIONAL), Verdict.REJECT, Reason.NATIONAL_DNC),
    ("expired consent loses to the list", call(), loaded(consent=EXPIRED, national=NATIONAL), Verdict.REJECT,
     Reason.NATIONAL_DNC),
    ("consent not yet valid loses to the list", call(), loaded(consent=NOT_YET, national=NATIONAL),
     Verdict.REJECT, Reason.NATIONAL_DNC),
    # revocation vs consent and lists
    ("revocation beats an unlisted callee", call(), loaded(consent=REVOKED), Verdict.REJECT,
     Reason.CONSENT_REVOKED),
    ("revocation is reported before the list", call(), loaded(consent=REVOKED, national=NATIONAL),
     Verdict.REJECT, Reason.CONSENT_REVOKED),
    ("revocation beats the opt-in default", call(tenant=OPT_IN), loaded(consent=REVOKED), Verdict.REJECT,
     Reason.CONSENT_REVOKED),
    ("revocation does not stop a service call", call(Purpose.SERVICE), loaded(consent=REVOKED), Verdict.ALLOW,
     Reason.ALLOWED_SERVICE),
    # category preferences vs consent
    ("declined category beats consent", call(), loaded(consent=GRANTED, declined_categories=frozenset({"finance"})),
     Verdict.REJECT, Reason.CATEGORY_DECLINED),
    ("decline-all beats consent", call(), loaded(consent=GRANTED, declined_categories=DECLINE_ALL),
     Verdict.REJECT, Reason.CATEGORY_DECLINED),
    ("another category declined, consent still allows", call(),
     loaded(consent=GRANTED, declined_categories=frozenset({"travel"})), Verdict.ALLOW, Reason.ALLOWED_CONSENT),
    ("decline-all beats an uncategorised call", call(category=None), loaded(declined_categories=DECLINE_ALL),
     Verdict.REJECT, Reason.CATEGORY_DECLINED),
    # calling hours vs consent and lists
    ("hours beat consent", call(at=NIGHT), loaded(consent=GRANTED), Verdict.REJECT, Reason.OUTSIDE_HOURS),
    ("hours beat a clear callee", call(at=NIGHT), loaded(), Verdict.REJECT, Reason.OUTSIDE_HOURS),
    ("consent inside hours", call(), loaded(consent=GRANTED), Verdict.ALLOW, Reason.ALLOWED_CONSENT),
    ("a listed callee at night is reported as listed", call(at=NIGHT), loaded(national=NATIONAL), Verdict.REJECT,
     Reason.NATIONAL_DNC),
    ("revocation at night is reported as revocation", call(at=NIGHT), loaded(consent=REVOKED), Verdict.REJECT,
     Reason.CONSENT_REVOKED),
    ("opt-in without consent at night is no_consent", call(at=NIGHT, tenant=OPT_IN), loaded(), Verdict.REJECT,
     Reason.NO_CONSENT),
    ("no window configured: night is fine", call(at=NIGHT, tenant=replace(TENANT, hours=None)), loaded(),
     Verdict.ALLOW, Reason.ALLOWED_CLEAR),
    ("service at night", call(Purpose.SERVICE, at=NIGHT), loaded(), Verdict.ALLOW, Reason.ALLOWED_SERVICE),
    # service vs preferences and blocks
    ("service beats decline-all", call(Purpose.SERVICE), loaded(declined_categories=DECLINE_ALL, national=NATIONAL),
     Verdict.ALLOW, Reason.ALLOWED_SERVICE),
    ("a specific block stops a service call", call(Purpose.SERVICE), loaded(subscriber_blocks_originator=True),
     Verdict.REJECT, Reason.SUBSCRIBER_BLOCK),
    ("a specific block beats consent", call(), loaded(subscriber_blocks_originator=True, consent=GRANTED),
     Verdict.REJECT, Reason.SUBSCRIBER_BLOCK),
    # suspension vs everything
    ("suspension beats consent", call(), loaded(originator_suspended=True, consent=GRANTED), Verdict.REJECT,
     Reason.ORIGINATOR_SUSPENDED),
    ("suspension beats a service call", call(Purpose.SERVICE), loaded(originator_suspended=True), Verdict.REJECT,
     Reason.ORIGINATOR_SUSPENDED),
    # opt-in default vs consent
    ("opt-in with consent", call(tenant=OPT_IN), loaded(consent=GRANTED), Verdict.ALLOW, Reason.ALLOWED_CONSENT),
    ("opt-in with expired consent", call(tenant=OPT_IN), loaded(consent=EXPIRED), Verdict.REJECT, Reason.NO_CONSENT),
    ("opt-in, consent for another category", call(tenant=OPT_IN, category="food"), loaded(consent=FINANCE_ONLY),
     Verdict.REJECT, Reason.NO_CONSENT),
]


@pytest.mark.parametrize(("conflict", "attempt", "facts", "verdict", "reason"), CONFLICTS,
                         ids=[row[0] for row in CONFLICTS])
def test_conflict(conflict: str, attempt: CallAttempt, facts: Facts, verdict: Verdict, reason: Reason) -> None:
    decision = decide(attempt, facts)
    assert (decision.verdict, decision.reason) == (verdict, reason), conflict
    if reason in {Reason.ALLOWED_CONSENT, Reason.CONSENT_REVOKED}:
        assert decision.detail == facts.consent.record_id  # type: ignore[union-attr]


def test_outside_hours_names_the_zone_and_local_time() -> None:
    decision = decide(call(at=NIGHT), loaded(consent=GRANTED))
    assert decision.sip_code == 607
    assert "Asia/Shanghai 2026-11-26 22:00" in decision.detail


def test_monitor_mode_allows_but_keeps_outside_hours() -> None:
    decision = decide(call(at=NIGHT, tenant=replace(TENANT, mode=Mode.MONITOR)), loaded())
    assert decision.verdict is Verdict.ALLOW
    assert decision.outcome is Verdict.REJECT
    assert decision.reason is Reason.OUTSIDE_HOURS


def test_consent_expiry_is_exclusive() -> None:
    at_expiry = replace(GRANTED, expires_at=DAY)
    assert decide(call(tenant=OPT_IN), loaded(consent=at_expiry)).reason is Reason.NO_CONSENT
    just_before = replace(GRANTED, expires_at=DAY + timedelta(microseconds=1))
    assert decide(call(tenant=OPT_IN), loaded(consent=just_before)).reason is Reason.ALLOWED_CONSENT
