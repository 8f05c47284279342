"""The fast normaliser (dncgate.numbers_fast) gives phonenumbers' answer (issue 14 item 4).

Over every region phonenumbers supports and every form README's "Dialled digits" lists (national
with and without the trunk prefix, the region's own and a configured international prefix, +E.164,
the country code without +, technical prefixes, separators and sip:/tel: URIs, short numbers), the
normaliser with its fast path returns exactly what phonenumbers alone returns (``numbers.reference``).
A fixed example budget and no deadline: no dependence on machine speed."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from dncgate.numbers import DialPlan, InvalidNumber, Subscriber, normalise_uncached, reference, strip_technical_prefixes
from dncgate.numbers_fast import NOT_VALID, fast_subscriber

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
         PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP,
         PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER, PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL)
TECHNICAL = ("9", "17951", "1010XXX", "*67", "141", "#31#")


def _examples() -> list[tuple[str, str, str]]:
    """(region, country code, national significant number) of every example number phonenumbers has."""
    found = []
    for region in REGIONS:
        for kind in TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append((region, str(number.country_code), phonenumbers.national_significant_number(number)))
    return found


EXAMPLES = _examples()


def _idd(region: str) -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    preferred = metadata.preferred_international_prefix if metadata is not None else None
    own = metadata.international_prefix if metadata is not None else None
    return preferred or (own if own and own.isdigit() else "00")


def _trunk(region: str) -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return (metadata.national_prefix if metadata is not None else None) or ""


_PLAN = st.builds(
    DialPlan,
    region=st.sampled_from(REGIONS),
    trunk_prefix=st.none() | st.sampled_from(["", "0", "1", "8"]),
    international_prefixes=st.sampled_from([(), ("00",), ("011",), ("00", "011")]),
    technical_prefixes=st.sampled_from([(), ("9",), ("17951",), ("1010XXX", "*67"), ("141", "#31#")]),
)


@st.composite
def _dialled(draw: st.DrawFn, plan: DialPlan) -> str:
    region, country, nsn = draw(st.sampled_from(EXAMPLES))
    if draw(st.booleans()):  # the example's region, or the plan's: national forms of either
        region = plan.region
    changed = draw(st.integers(0, 4))
    tail = draw(st.text("0123456789", min_size=max(0, changed - 1), max_size=changed + 1))
    nsn = (nsn[:-changed] if changed else nsn) + tail
    form = draw(st.sampled_from(["national", "trunk", "own_idd", "00", "011", "plus", "country", "short"]))
    number = {
        "national": nsn, "trunk": _trunk(region) + nsn, "own_idd": _idd(plan.region) + country + nsn,
        "00": "00" + country + nsn, "011": "011" + country + nsn, "plus": "+" + country + nsn,
        "country": country + nsn, "short": nsn[: draw(st.integers(1, 6))],
    }[form]
    technical = draw(st.sampled_from(("", *TECHNICAL)))
    number = technical.replace("XXX", draw(st.text("0123456789", min_size=3, max_size=3))) + number
    wrap = draw(st.sampled_from(["", "", "", "sip", "tel", "separators"]))
    if wrap == "sip":
        return f"sip:{number}@127.0.0.1;user=phone"
    if wrap == "tel":
        return f"tel:{number}"
    if wrap == "separators" and len(number) > 4:
        return f"{number[:3]} {number[3:4]}-{number[4:]}"
    return number


@settings(max_examples=3000, deadline=None)
@given(st.data(), _PLAN)
def test_fast_path_gives_phonenumbers_answer(data: st.DataObject, plan: DialPlan) -> None:
    dialled = data.draw(_dialled(plan))
    expected = reference(dialled, plan)
    assert normalise_uncached(dialled, plan) == expected
    fast = fast_subscriber(dialled, plan, strip_technical_prefixes(dialled, plan.technical_prefixes))
    if fast is not None and fast.e164 is not None:
        assert isinstance(expected, Subscriber)
        assert (fast.e164, fast.geographical) == (expected.e164, expected.geographical)
    if fast is not None and fast.e164 is None:
        assert expected == InvalidNumber(dialled, "not a valid number for its country")


def test_every_example_number_in_every_plain_form_agrees_and_most_take_the_fast_path() -> None:
    """Each example number of each region: +E.164 under a US plan, national and international forms
    under its own region's plan. Same answers always; the fast path answers for every valid number of
    more than 6 digits (shorter ones may be short numbers: phonenumbers' short-number metadata decides)."""
    answered = tried = 0
    for region, country, nsn in EXAMPLES:
        plan = DialPlan(region=region)
        forms = [(DialPlan(region="US"), "+" + country + nsn), (plan, _trunk(region) + nsn), (plan, nsn),
                 (plan, _idd(region) + country + nsn), (DialPlan(region=region, technical_prefixes=("9",)),
                                                        "9" + _trunk(region) + nsn)]
        for form_plan, dialled in forms:
            expected = reference(dialled, form_plan)
            assert normalise_uncached(dialled, form_plan) == expected, (region, dialled)
            stripped = strip_technical_prefixes(dialled, form_plan.technical_prefixes)
            if isinstance(expected, Subscriber) and len(stripped) > 6:  # 6 digits or fewer: maybe a short number
                tried += 1
                fast = fast_subscriber(dialled, form_plan, stripped)
                answered += fast is not None and fast.e164 is not None
    assert tried > 5000
    assert answered == tried, f"fast path answered {answered} of {tried} valid numbers"


def test_fast_path_refuses_what_is_not_plain_digits() -> None:
    plan = DialPlan(region="US", technical_prefixes=("*67",))
    for dialled in ("sip:+12015550123@127.0.0.1", "201-555-0123", "+1 201 555 0123", "\u0662015550123",
                    "*672015550123#", "911", "9911", "+", ""):
        assert fast_subscriber(dialled, plan) is None
    assert fast_subscriber("+12015550123", plan) == ("+12015550123", True)
    assert fast_subscriber("*6712015550123", plan, "12015550123") == ("+12015550123", True)
    assert fast_subscriber("+12011550123", plan) == NOT_VALID  # no US area code starts 1
