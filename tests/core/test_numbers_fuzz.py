"""Fuzz ``normalise`` (issue 11): whatever a switch hands over, it returns one of its three typed
results and never raises; a Subscriber's E.164 form is stable and valid. Also the dial-plan and
prefix-rule parsers. A fixed, small example budget and no deadline: no dependence on machine speed."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.numbers import (
    MAX_DIALLED_CHARS,
    DialPlan,
    InvalidNumber,
    ShortNumber,
    Subscriber,
    dial_plan_problems,
    normalise,
    rule_prefix,
)

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_PLAN = st.builds(
    DialPlan,
    region=st.sampled_from(REGIONS),
    trunk_prefix=st.none() | st.sampled_from(["", "0", "1", "9", "8"]),
    international_prefixes=st.sampled_from([(), ("00",), ("011",), ("00", "011")]),
    technical_prefixes=st.sampled_from([(), ("9",), ("17951",), ("1010XXX", "*67")]),
)
_PIECES = st.sampled_from(["+", "00", "011", "0", "1", "9", "*", "#", " ", "-", "(", ")", ".", "sip:", "tel:", "@",
                           ";", "%2B", "<", ">", "x", "\ufeff", "\u0661", "8613800138000", "2015550123", "911", "112"])
_DIALLED = st.one_of(
    st.text(max_size=40),
    st.lists(_PIECES, max_size=10).map("".join),
    st.text("0123456789", max_size=20),
    st.text(max_size=MAX_DIALLED_CHARS + 20, alphabet="0123456789+"),
)


@settings(max_examples=500, deadline=None)
@given(_DIALLED, _PLAN)
def test_normalise_never_raises_and_returns_a_typed_result(dialled: str, plan: DialPlan) -> None:
    result = normalise(dialled, plan)
    assert isinstance(result, Subscriber | ShortNumber | InvalidNumber)
    if isinstance(result, Subscriber):
        assert result.e164.startswith("+")
        assert result.e164[1:].isdigit()
        number = phonenumbers.parse(result.e164, None)
        assert phonenumbers.is_valid_number(number)
        assert normalise(result.e164, plan) == Subscriber(result.e164, result.e164, result.geographical)
    if isinstance(result, InvalidNumber):
        assert result.reason == "invalid_number"
        assert result.detail


@settings(max_examples=60, deadline=None)
@given(_PLAN)
def test_dial_plan_problems_never_raises(plan: DialPlan) -> None:
    problems = dial_plan_problems(plan)
    assert all(isinstance(p, str) and p for p in problems)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=20), st.lists(_PIECES, max_size=5).map("".join)), st.sampled_from(REGIONS),
       st.booleans())
def test_rule_prefix_gives_digits_or_a_value_error(text: str, region: str, force: bool) -> None:
    try:
        digits = rule_prefix(text, region, force=force)
    except ValueError as exc:
        message = str(exc)
        digits = ""
    else:
        message = ""
    if message:
        return
    assert digits.isascii()
    assert digits.isdigit()
    assert 1 <= len(digits) <= 15
