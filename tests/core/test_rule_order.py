"""The decision order is stated once, as ``policy.RULES``: the README's table says the same, and
``decide()`` follows it.

How decide() is checked: each rule has a trigger (a change to a plain attempt and its facts that
makes that rule match). For rule N, the triggers of N and of every later rule are applied
together; decide() must answer with rule N's reason. A swap of two rules in decide() or in RULES
makes one of these fail. The one documented exception: calling hours (a later row) reject what
explicit consent would allow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dncgate.hours import CallingHours
from dncgate.model import (
    CallAttempt,
    ConsentFact,
    ConsentStatus,
    Facts,
    FactsUnavailable,
    ListHit,
    ListPolicy,
    Originator,
    PortUse,
    Purpose,
    Reason,
    SenderPort,
    StaleAction,
    TenantPolicy,
)
from dncgate.numbers import DialPlan, InvalidNumber, ShortKind, ShortNumber, Subscriber
from dncgate.policy import RULES, Rule, decide

README = Path(__file__).resolve().parents[2] / "README.md"
DAY = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # Thursday 11:00 in Shanghai
NIGHT = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # Thursday 22:00 in Shanghai
TENANT = TenantPolicy(name="acme", dial_plan=DialPlan(region="CN"), hours=CallingHours())
PLAIN_CALL = CallAttempt(tenant=TENANT, originator=Originator(entity="bank-1"), purpose=Purpose.MARKETING,
                         callee=Subscriber("13800138000", "+8613800138000"), at=DAY, category="finance")
PLAIN_FACTS = Facts(national_version="7", list_age=timedelta(days=1))

Case = tuple[CallAttempt, Facts | FactsUnavailable]


def _facts(case: Case, **changes: object) -> Case:
    attempt, facts = case
    assert isinstance(facts, Facts)
    return attempt, replace(facts, **changes)  # type: ignore[arg-type]


def _attempt(case: Case, **changes: object) -> Case:
    attempt, facts = case
    return replace(attempt, **changes), facts  # type: ignore[arg-type]


def _tenant(case: Case, **changes: object) -> Case:
    return _attempt(case, tenant=replace(case[0].tenant, **changes))  # type: ignore[arg-type]


TRIGGERS: dict[Reason, Callable[[Case], Case]] = {
    Reason.ALLOWED_EMERGENCY: lambda c: _attempt(c, callee=ShortNumber("110", "110", ShortKind.EMERGENCY)),
    Reason.UNKNOWN_TENANT: lambda c: _attempt(c, unknown_tenant="acme-typo"),
    Reason.INVALID_NUMBER: lambda c: _attempt(c, callee=InvalidNumber("12", "too short")),
    Reason.UNKNOWN_SENDER_PORT: lambda c: _attempt(c, sender=SenderPort("106900009999")),
    Reason.SERVICE_PORT_MISUSE: lambda c: _attempt(c, sender=SenderPort("95588", PortUse.SERVICE, "bank-1"),
                                                   purpose=Purpose.MARKETING),
    Reason.CHECK_FAILED: lambda c: (c[0], FactsUnavailable("timeout")),
    Reason.ORIGINATOR_SUSPENDED: lambda c: _facts(c, originator_suspended=True),
    Reason.SUBSCRIBER_BLOCK: lambda c: _facts(c, subscriber_blocks_originator=True),
    Reason.ALLOWED_SERVICE: lambda c: _attempt(c, purpose=Purpose.SERVICE),
    Reason.ORIGINATOR_RESTRICTED: lambda c: _facts(c, originator_restricted=True),
    Reason.CONSENT_REVOKED: lambda c: _facts(c, consent=ConsentFact(ConsentStatus.REVOKED, record_id="c-2")),
    Reason.CATEGORY_DECLINED: lambda c: _facts(c, declined_categories=frozenset({"finance"})),
    Reason.ALLOWED_CONSENT: lambda c: _facts(c, consent=ConsentFact(ConsentStatus.GRANTED, record_id="c-1")),
    Reason.LIST_MISSING: lambda c: _facts(c, national_version=""),
    Reason.LIST_STALE: lambda c: _facts(_tenant(c, stale_action=StaleAction.REJECT), list_age=timedelta(days=40)),
    Reason.NATIONAL_DNC: lambda c: _facts(c, national=ListHit("national", "7")),
    Reason.TENANT_DNC: lambda c: _facts(c, tenant_list=ListHit("tenant:acme", "2")),
    Reason.PREFIX_RULE: lambda c: _facts(c, prefix_rule=ListHit("tenant:acme", "2", prefix="86138")),
    Reason.NO_CONSENT: lambda c: _tenant(c, list_policy=ListPolicy.OPT_IN),
    Reason.OUTSIDE_HOURS: lambda c: _attempt(c, at=NIGHT),
    Reason.ALLOWED_CLEAR: lambda c: c,
}
# A later row that still wins over an earlier one (README: row 20 applies to what row 13 allows).
OVERRIDDEN_BY = {Reason.ALLOWED_CONSENT: Reason.OUTSIDE_HOURS}


def _readme_rows() -> list[tuple[int, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## How a call is decided"):]
    section = section[:section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            rows.append((int(cells[0]), cells[1], cells[2].strip("`")))
    return rows


def test_rules_name_every_reason_once() -> None:
    assert len(RULES) == 21
    assert sorted(rule.reason for rule in RULES) == sorted(Reason)


def test_the_readme_table_is_the_rule_order() -> None:
    assert _readme_rows() == [(n, rule.when, rule.reason.value) for n, rule in enumerate(RULES, start=1)]


@pytest.mark.parametrize("rule", RULES, ids=[rule.reason.value for rule in RULES])
def test_each_trigger_alone_makes_its_rule_match(rule: Rule) -> None:
    assert decide(*TRIGGERS[rule.reason]((PLAIN_CALL, PLAIN_FACTS))).reason is rule.reason


@pytest.mark.parametrize("position", range(len(RULES)), ids=[rule.reason.value for rule in RULES])
def test_decide_applies_a_rule_before_every_later_one(position: int) -> None:
    reason = RULES[position].reason
    assert decide(*_all_triggers_from(position)).reason is OVERRIDDEN_BY.get(reason, reason)
    if reason in OVERRIDDEN_BY:  # and without the overriding row, the rule itself decides
        assert decide(*_all_triggers_from(position, but=OVERRIDDEN_BY[reason])).reason is reason


def _all_triggers_from(position: int, but: Reason | None = None) -> Case:
    case: Case = (PLAIN_CALL, PLAIN_FACTS)
    for later in reversed(RULES[position:]):  # the rule's own trigger last: it wins any clash of fields
        if later.reason is not but:
            case = TRIGGERS[later.reason](case)
    return case
