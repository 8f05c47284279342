"""Calling hours: zones from the number (most restrictive of several), overrides, windows per kind of day."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time

import phonenumbers
import pytest
from phonenumbers.tzdata import TIMEZONE_DATA

from dncgate.hours import (
    CallingHours,
    Window,
    outside_hours,
    parse_days,
    parse_overrides,
    parse_window,
    zone_names,
)
from dncgate.numbers import DialPlan, Subscriber, normalise

CN = "8613800138000"  # Asia/Shanghai, UTC+8, no DST
NYC = "12015550123"  # America/New_York
UK_MOBILE = "447400123456"  # London plus the crown dependencies
US_FICTIONAL = "15551230607"  # 555: no area data, so the country code's zones: all of NANP


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_zones_come_from_the_number() -> None:
    assert zone_names(CN) == ("Asia/Shanghai",)
    assert zone_names(NYC) == ("America/New_York",)
    assert "Europe/London" in zone_names(UK_MOBILE)
    assert zone_names("61412345678") == ("Australia/Sydney",)  # the table's entry for 614 (a mobile: see below)


def test_unknown_area_falls_back_to_the_country_zones() -> None:
    zones = zone_names("15551230607")  # 555: no area data -> every NANP zone
    assert "Pacific/Honolulu" in zones
    assert "America/New_York" in zones


@pytest.mark.parametrize(
    ("at", "outside"),
    [
        (utc(2026, 11, 26, 0, 0), False),  # 08:00 Shanghai, Thursday: the window opens
        (utc(2026, 11, 25, 23, 59), True),  # 07:59
        (utc(2026, 11, 26, 12, 59), False),  # 20:59
        (utc(2026, 11, 26, 13, 0), True),  # 21:00: the end is exclusive
    ],
)
def test_default_window_in_the_callee_local_time(at: datetime, outside: bool) -> None:
    assert (outside_hours(CallingHours(), CN, at) is not None) is outside


def test_same_instant_differs_by_callee_zone() -> None:
    at = utc(2026, 11, 26, 14, 0)  # 22:00 in Shanghai, 09:00 in New York
    assert outside_hours(CallingHours(), CN, at) is not None
    assert outside_hours(CallingHours(), NYC, at) is None


def test_several_zones_use_the_most_restrictive() -> None:
    hours = CallingHours(zone_overrides=parse_overrides({"+1555": ["America/New_York", "America/Los_Angeles"]}))
    # 15:30 UTC on a Thursday: 10:30 New York (inside), 07:30 Los Angeles (outside).
    why = outside_hours(hours, US_FICTIONAL, utc(2026, 11, 26, 15, 30))
    assert why is not None
    assert "Los_Angeles" in why
    # 18:00 UTC: 13:00 New York, 10:00 Los Angeles: inside in both.
    assert outside_hours(hours, US_FICTIONAL, utc(2026, 11, 26, 18, 0)) is None
    # Without the override the whole of NANP applies (Guam to Honolulu and St John's): of a
    # Thursday's 24 UTC hours only 00, 22 and 23 are inside 08-21 in every one of its zones.
    inside = [h for h in range(24) if outside_hours(CallingHours(), US_FICTIONAL, utc(2026, 11, 26, h)) is None]
    assert inside == [0, 22, 23]


def test_override_table_wins_over_the_data() -> None:
    hours = CallingHours(zone_overrides=parse_overrides({"+861380": "America/New_York"}))
    at = utc(2026, 11, 26, 14, 0)  # 22:00 Shanghai, 09:00 New York
    assert outside_hours(hours, CN, at) is None
    assert outside_hours(hours, "8618612345678", at) is not None  # other prefixes keep the data


def test_weekends_and_holidays() -> None:
    hours = CallingHours(
        weekend=Window(time(10), time(18)), holidays=frozenset({date(2026, 10, 1)}), holiday=None
    )
    saturday_9 = utc(2026, 11, 28, 1, 0)  # 09:00 Saturday in Shanghai
    assert "weekend" in (outside_hours(hours, CN, saturday_9) or "")
    assert outside_hours(hours, CN, utc(2026, 11, 28, 3, 0)) is None  # 11:00 Saturday
    national_day = utc(2026, 10, 1, 3, 0)  # 11:00 on a holiday (a Thursday)
    assert "holiday" in (outside_hours(hours, CN, national_day) or "")
    closed_weekend = CallingHours(weekend=None)
    assert "no calls" in (outside_hours(closed_weekend, CN, utc(2026, 11, 28, 3, 0)) or "")


def test_number_without_any_zone_is_outside() -> None:
    why = outside_hours(CallingHours(), "999123456", utc(2026, 11, 26, 3, 0))
    assert why is not None
    assert "override" in why


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("08:00-21:00", Window(time(8), time(21))),
        ("9:30-17:00", Window(time(9, 30), time(17))),
        ("00:00-24:00", Window(time(0), time.max)),
        ("closed", None),
    ],
)
def test_parse_window(text: str, window: Window | None) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["21:00-08:00", "8-21", "25:00-26:00", "08:00-24:30", "", "08:00-08:00"])
def test_bad_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|after|not a time"):
        parse_window(text)


def test_whole_day_window_includes_the_last_minute() -> None:
    hours = CallingHours(weekday=parse_window("00:00-24:00"), weekend=parse_window("00:00-24:00"))
    assert outside_hours(hours, CN, utc(2026, 11, 26, 15, 59, 59)) is None  # 23:59:59 local


def test_parse_overrides_and_days() -> None:
    overrides = parse_overrides({"+1": "UTC", "+1808": ["Pacific/Honolulu"]})
    assert overrides[0] == ("1808", ("Pacific/Honolulu",))  # longest first
    with pytest.raises(ValueError, match="not a time zone"):
        parse_overrides({"+86": "Mars/Olympus"})
    with pytest.raises(ValueError, match=r"E\.164 prefix"):
        parse_overrides({"abc": "UTC"})
    assert parse_days(("sat", "Sunday")) == frozenset({5, 6})
    with pytest.raises(ValueError, match="not a day"):
        parse_days(("funday",))


@pytest.mark.parametrize(
    ("dialled", "region", "zones"),
    [
        # mobile ranges are national in Australia and Russia: every zone of the country
        ("+61 438 123 456", "AU", set(TIMEZONE_DATA["61"])),
        ("+7 914 123 45 67", "RU", set(TIMEZONE_DATA["7"]) - {"Etc/Unknown"}),
        # a fixed line keeps its place
        ("+61 2 9374 4000", "AU", {"Australia/Sydney"}),
        # NANPA numbers are tied to their area code, mobiles included
        ("+1 201 555 0123", "US", {"America/New_York"}),
    ],
)
def test_numbers_not_tied_to_a_place_get_every_zone_of_their_country(
    dialled: str, region: str, zones: set[str],
) -> None:
    callee = normalise(dialled, DialPlan(region=region))
    assert isinstance(callee, Subscriber)
    assert set(zone_names(callee.e164[1:], geographical=callee.geographical)) == zones


def test_an_australian_mobile_at_dawn_in_perth_is_outside_the_hours() -> None:
    callee = normalise("+61 438 123 456", DialPlan(region="AU"))
    assert isinstance(callee, Subscriber)
    at = datetime(2026, 1, 14, 21, 30, tzinfo=UTC)  # 08:30 in Sydney, 05:30 in Perth
    assert outside_hours(CallingHours(), callee.e164[1:], at, geographical=True) is None  # Sydney's reading
    why = outside_hours(CallingHours(), callee.e164[1:], at, geographical=callee.geographical)
    assert why is not None
    assert "Sydney" not in why  # Brisbane (07:30) or Perth (05:30) is still before 08:00


def test_number_type_is_unknown_exactly_when_the_number_is_invalid() -> None:
    """numbers.normalise() reads validity from number_type() (it needs the type anyway)."""
    rng = random.Random(5)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    checked = valid = 0
    for _ in range(30_000):
        text = f"+{rng.choice(codes)}" + "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12)))
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            continue
        is_valid = phonenumbers.is_valid_number(number)
        assert is_valid == (phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.UNKNOWN), text
        checked += 1
        valid += is_valid
    assert checked > 20_000
    assert valid > 1_000


def test_decide_reads_the_callees_zones_from_its_number_type() -> None:
    from dncgate.model import CallAttempt, Facts, Originator, Purpose, Reason, TenantPolicy, Verdict
    from dncgate.policy import decide

    tenant = TenantPolicy(name="t", dial_plan=DialPlan(region="AU"), hours=CallingHours())
    callee = normalise("0438 123 456", tenant.dial_plan)
    decision = decide(CallAttempt(tenant, Originator(), Purpose.MARKETING, callee, utc(2026, 1, 14, 21, 30)),
                      Facts(national_version="7"))
    assert (decision.verdict, decision.reason) == (Verdict.REJECT, Reason.OUTSIDE_HOURS)
