"""Dialled digits -> E.164, table-driven over CN, US, GB, IN and DE."""

from __future__ import annotations

import re

import pytest

from dncgate.numbers import (
    DialPlan,
    InvalidNumber,
    ShortKind,
    ShortNumber,
    Subscriber,
    dial_plan_problems,
    normalise,
    rule_prefix,
)

CN = DialPlan(region="CN", international_prefixes=("00",), technical_prefixes=("17951", "12593"))
US = DialPlan(region="US", international_prefixes=("011",), technical_prefixes=("9", "*67", "1010XXX"))
GB = DialPlan(region="GB", international_prefixes=("00",), technical_prefixes=("141", "1470"))
IN = DialPlan(region="IN", international_prefixes=("00",))
DE = DialPlan(region="DE", international_prefixes=("00",), technical_prefixes=("#31#",))

SUBSCRIBERS = [
    # China: mobiles without trunk prefix, fixed lines with 0 + area code, IP-dialling prefixes.
    (CN, "13800138000", "+8613800138000"),
    (CN, "+86 138 0013 8000", "+8613800138000"),
    (CN, "008613800138000", "+8613800138000"),
    (CN, "1795113800138000", "+8613800138000"),
    (CN, "010-12345678", "+861012345678"),
    (CN, "02112345678", "+862112345678"),
    (CN, "075512345678", "+8675512345678"),
    (CN, "17012345678", "+8617012345678"),
    (CN, "tel:+86-138-0013-8000", "+8613800138000"),
    (CN, "sip:13800138000@127.0.0.1;user=phone", "+8613800138000"),
    # United States: 10 digits, 1 + 10, 011 international, outside-line 9, hidden CLI, carrier select.
    (US, "2015550123", "+12015550123"),
    (US, "1-201-555-0123", "+12015550123"),
    (US, "(201) 555-0123", "+12015550123"),
    (US, "+12015550123", "+12015550123"),
    (US, "912015550123", "+12015550123"),
    (US, "*672015550123", "+12015550123"),
    (US, "9*6712015550123", "+12015550123"),
    (US, "101028812015550123", "+12015550123"),
    (US, "011442079460018", "+442079460018"),
    (US, "<sip:+12015550123@127.0.0.1;user=phone>", "+12015550123"),
    (US, "sips:%2B12015550123@127.0.0.1", "+12015550123"),
    # United Kingdom: trunk 0, London and mobile, withheld-CLI 141.
    (GB, "020 7946 0018", "+442079460018"),
    (GB, "07400 123456", "+447400123456"),
    (GB, "+44 7400 123456", "+447400123456"),
    (GB, "00447400123456", "+447400123456"),
    (GB, "14107400123456", "+447400123456"),
    (GB, "01865 270000", "+441865270000"),
    # India: 10-digit mobiles, trunk 0, Delhi fixed line.
    (IN, "9876543210", "+919876543210"),
    (IN, "09876543210", "+919876543210"),
    (IN, "+91 98765 43210", "+919876543210"),
    (IN, "01123456789", "+911123456789"),
    (IN, "00919876543210", "+919876543210"),
    # Germany: variable-length area codes and subscriber numbers.
    (DE, "030 12345678", "+493012345678"),
    (DE, "030 123456", "+4930123456"),
    (DE, "0151 12345678", "+4915112345678"),
    (DE, "089 1234567", "+49891234567"),
    (DE, "033203 12345", "+493320312345"),
    (DE, "#31#03012345678", "+493012345678"),
    (DE, "+49 (0)30 12345678", "+493012345678"),
]


@pytest.mark.parametrize(("plan", "dialled", "e164"), SUBSCRIBERS)
def test_subscriber_numbers(plan: DialPlan, dialled: str, e164: str) -> None:
    result = normalise(dialled, plan)
    assert isinstance(result, Subscriber), result
    assert result.e164 == e164
    assert result.digits == int(e164[1:])


SHORT = [
    (CN, "110", ShortKind.EMERGENCY),
    (CN, "119", ShortKind.EMERGENCY),
    (CN, "120", ShortKind.EMERGENCY),
    (CN, "10086", ShortKind.SERVICE),
    (US, "911", ShortKind.EMERGENCY),
    (US, "9911", ShortKind.EMERGENCY),
    (US, "411", ShortKind.SERVICE),
    (GB, "999", ShortKind.EMERGENCY),
    (GB, "112", ShortKind.EMERGENCY),
    (IN, "112", ShortKind.EMERGENCY),
    (IN, "100", ShortKind.EMERGENCY),
    (DE, "110", ShortKind.EMERGENCY),
    (DE, "112", ShortKind.EMERGENCY),
]


@pytest.mark.parametrize(("plan", "dialled", "kind"), SHORT)
def test_emergency_and_short_numbers_are_never_subscribers(plan: DialPlan, dialled: str, kind: ShortKind) -> None:
    result = normalise(dialled, plan)
    assert isinstance(result, ShortNumber), result
    assert result.kind is kind


def test_operator_short_numbers() -> None:
    plan = DialPlan(region="CN", extra_short_numbers=frozenset({"12321"}))
    result = normalise("12321", plan)
    assert isinstance(result, ShortNumber)
    assert result.kind is ShortKind.SERVICE


INVALID = [
    (US, ""),
    (US, "   "),
    (US, "abc"),
    (US, "201555012"),
    (US, "+999123"),
    (US, "2015550123; DROP TABLE"),
    (CN, "1380013800"),
    (GB, "*#06#"),
    (DE, "+49"),
    (IN, "x" * 1000),
    (US, "sip:@127.0.0.1"),
]


@pytest.mark.parametrize(("plan", "dialled"), INVALID)
def test_invalid_numbers_are_typed_never_raised(plan: DialPlan, dialled: str) -> None:
    result = normalise(dialled, plan)
    assert isinstance(result, InvalidNumber), result
    assert result.reason == "invalid_number"
    assert result.detail


def test_technical_prefix_is_stripped_at_most_once() -> None:
    plan = DialPlan(region="US", technical_prefixes=("9",))
    # One 9 is the outside line; a second 9 is part of what was dialled, which is then not valid.
    assert isinstance(normalise("9912015550123", plan), InvalidNumber)
    result = normalise("912015550123", plan)
    assert isinstance(result, Subscriber)
    assert result.e164 == "+12015550123"


def test_operator_trunk_prefix_override() -> None:
    plan = DialPlan(region="GB", trunk_prefix="8")
    result = normalise("87400123456", plan)
    assert isinstance(result, Subscriber)
    assert result.e164 == "+447400123456"


def test_non_string_input_is_invalid() -> None:
    result = normalise(12015550123, US)  # type: ignore[arg-type]
    assert isinstance(result, InvalidNumber)


def test_warm_up_loads_each_region_once_at_start_and_caches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from phonenumbers import PhoneMetadata

    from dncgate.numbers import _normalise_cached, warm_up

    PhoneMetadata.metadata_for_region("NZ")  # loaded for real (phonenumbers loads a region once)
    asked: list[str] = []
    # phonenumbers calls a region's (private) loader on the first metadata_for_region(); a spy in
    # its place shows that warm_up() gets there (monkeypatch restores the table afterwards).
    monkeypatch.setitem(PhoneMetadata._region_available, "NZ", asked.append)
    _normalise_cached.cache_clear()
    warm_up([DialPlan(region="NZ"), DialPlan(region="ZZ")])  # ZZ: no metadata, skipped quietly
    assert asked == ["NZ"]
    assert _normalise_cached.cache_info().currsize == 0


@pytest.mark.parametrize(
    ("region", "prefixes", "dialled", "e164"),
    [
        ("GB", (), "0116 483 0498", "+441164830498"),  # Leicester, not New Zealand (+64 830498)
        ("IN", (), "011 2781 5378", "+911127815378"),  # Delhi, not South Africa
        ("US", (), "011 44 20 7946 0000", "+442079460000"),  # NANPA's own international prefix
        ("GB", (), "00 1 201 555 0123", "+12015550123"),  # and the UK's
        ("US", ("00",), "0012015550123", "+12015550123"),  # "00" where an operator asks for it
    ],
)
def test_only_the_regions_own_international_prefix_by_default(
    region: str, prefixes: tuple[str, ...], dialled: str, e164: str,
) -> None:
    assert normalise(dialled, DialPlan(region=region, international_prefixes=prefixes)) == Subscriber(dialled, e164)


def test_00_is_not_international_in_nanpa_unless_configured() -> None:
    assert isinstance(normalise("0012015550123", DialPlan(region="US")), InvalidNumber)


@pytest.mark.parametrize(
    ("plan", "dialled", "e164"),
    [
        (DialPlan(region="FR", trunk_prefix=""), "0033123456789", "+33123456789"),
        (DialPlan(region="FR", trunk_prefix=""), "+33123456789", "+33123456789"),
        (DialPlan(region="FR", trunk_prefix=""), "123456789", "+33123456789"),
        (DialPlan(region="GB", trunk_prefix="9"), "0033123456789", "+33123456789"),
        (DialPlan(region="GB", trunk_prefix="9"), "00442079460000", "+442079460000"),
        (DialPlan(region="GB", trunk_prefix="9"), "92079460000", "+442079460000"),
        (DialPlan(region="US", trunk_prefix="0"), "01133123456789", "+33123456789"),
        (DialPlan(region="AU", trunk_prefix=""), "001133123456789", "+33123456789"),
    ],
)
def test_an_overridden_trunk_prefix_keeps_the_regions_own_international_prefix(
    plan: DialPlan, dialled: str, e164: str,
) -> None:
    """Issue 11.8: trunk_prefix="" in FR (or "9" in GB) made 0033123456789 invalid."""
    assert normalise(dialled, plan) == Subscriber(dialled, e164)


@pytest.mark.parametrize("plan", [CN, US, GB, IN, DE, DialPlan(), DialPlan(region="US", international_prefixes=("00",)),
                                  DialPlan(region="GB", trunk_prefix="9"), DialPlan(region="FR", trunk_prefix="")])
def test_the_plans_the_tests_and_readme_use_have_no_problems(plan: DialPlan) -> None:
    assert dial_plan_problems(plan) == []


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        (DialPlan(region="GB", international_prefixes=("011",)), "'011' begins GB national numbers"),
        (DialPlan(region="IN", international_prefixes=("011",)), "'011' begins IN national numbers"),
        (DialPlan(region="JP", international_prefixes=("00",)), "'00' begins JP national numbers"),
        (DialPlan(region="US", international_prefixes=("+00",)), "'+00' is not 1-8 digits"),
        (DialPlan(region="US", international_prefixes=("",)), "'' is not 1-8 digits"),
        (DialPlan(region="XX"), "region 'XX' is not a region"),
        (DialPlan(region="GB", trunk_prefix="00"), "starts like GB's own international prefix"),
        (DialPlan(region="GB", trunk_prefix="O"), "trunk_prefix 'O' is not 1-8 digits"),
        (DialPlan(region="US", technical_prefixes=("XXX",)), "'XXX' is only X"),
        (DialPlan(region="US", technical_prefixes=("0",)), "'0' would strip the start of the international prefix"),
        (DialPlan(region="GB", technical_prefixes=("0X",)), "'0X' would strip the start of the international prefix"),
        (DialPlan(region="US", technical_prefixes=("9 ",)), "'9 ' is not 1-16 of the digits"),
    ],
)
def test_dial_plan_problems(plan: DialPlan, problem: str) -> None:
    problems = dial_plan_problems(plan)
    assert len(problems) == 1, problems
    assert problem in problems[0]


def test_a_configured_international_prefix_before_a_0_is_no_international_prefix() -> None:
    """As phonenumbers reads the region's own: India's 000800 toll-free numbers survive "00" configured."""
    plan = DialPlan(region="IN", international_prefixes=("00",))
    assert normalise("0008001234567", plan) == normalise("0008001234567", DialPlan(region="IN"))
    assert isinstance(normalise("0008001234567", plan), Subscriber)


@pytest.mark.parametrize(
    ("text", "region", "digits"),
    [("+86170", "US", "86170"), ("170", "CN", "86170"), ("0170", "CN", "86170"), ("0086170", "CN", "86170"),
     ("+86 170", "CN", "86170"), ("201", "US", "1201"), ("1201", "US", "1201"), ("011 86170", "US", "86170"),
     ("0800", "GB", "44800"), ("06", "IT", "3906")],
)
def test_rule_prefix_reads_national_forms_in_the_region(text: str, region: str, digits: str) -> None:
    assert rule_prefix(text, region) == digits


@pytest.mark.parametrize(
    ("text", "message"),
    [("+8", "shorter than any country code"), ("+86", "the whole of country code +86"), ("+1", "country code +1"),
     ("+0", "starts no country code"), ("+999", "starts no country code"), ("86x", "expected digits"),
     ("+1234567890123456", "expected digits"), ("", "expected digits")],
)
def test_rule_prefix_refusals(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        rule_prefix(text, "CN")


def test_rule_prefix_force_takes_a_whole_country_but_never_nothing() -> None:
    assert rule_prefix("+8", "CN", force=True) == "8"
    assert rule_prefix("+86", "CN", force=True) == "86"
    with pytest.raises(ValueError, match="starts no country code"):
        rule_prefix("+0", "CN", force=True)
