"""Calling hours in the callee's local time. Pure: no I/O, no clock (the caller passes the time).

The callee's time zones come from the number, as phonenumbers' ``time_zones_for_number`` finds
them: for a number tied to a place (``Subscriber.geographical``), its prefix -> zones table looked
up by the longest known prefix of the E.164 digits; for any other (a mobile where mobile ranges
are national, like Australia's or Russia's), every zone of its country. A per-tenant override
table comes first, for prefixes the data gets wrong. Where a number has several zones, the most
restrictive reading applies: the call is inside the window only when it is inside in *every*
zone. A number no zone is known for is outside (fail closed for marketing); add an override.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from dncgate.numbers import country_code_length

UNKNOWN_ZONE = "Etc/Unknown"
_WINDOW = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-4]):([0-5]\d)")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Window:
    """A daily window [start, end) of local wall-clock time; ``end`` may be 24:00 (as ``time.max``)."""

    start: time
    end: time

    def contains(self, at: time) -> bool:
        return self.start <= at and (at < self.end or self.end == time.max)

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


DEFAULT_WINDOW = Window(time(8, 0), time(21, 0))


@dataclass(frozen=True, slots=True)
class CallingHours:
    """One tenant's calling window. ``None`` for a kind of day means no marketing calls that day."""

    weekday: Window | None = DEFAULT_WINDOW
    weekend: Window | None = DEFAULT_WINDOW
    holiday: Window | None = None
    weekend_days: frozenset[int] = frozenset({5, 6})  # Monday is 0
    holidays: frozenset[date] = frozenset()  # callee-local dates
    # (E.164 digits prefix, zone names), for prefixes phonenumbers' data gets wrong.
    zone_overrides: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def window_on(self, day: date) -> tuple[str, Window | None]:
        if day in self.holidays:
            return "holiday", self.holiday
        if day.weekday() in self.weekend_days:
            return "weekend", self.weekend
        return "weekday", self.weekday


def parse_window(text: str) -> Window | None:
    """``"08:00-21:00"`` -> Window; ``"closed"`` -> None. Raises ``ValueError``."""
    value = text.strip().lower()
    if value == "closed":
        return None
    match = _WINDOW.fullmatch(value)
    if match is None:
        raise ValueError(f"{text!r}: expected HH:MM-HH:MM (like 08:00-21:00) or 'closed'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start = time(h1, m1)
    if h2 == 24 and m2:
        raise ValueError(f"{text!r}: 24:{m2:02d} is not a time (use 24:00 for midnight)")
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"{text!r}: the window must end after it starts (no windows across midnight)")
    return Window(start, end)


def zone_names(
    digits: str, overrides: tuple[tuple[str, tuple[str, ...]], ...] = (), *, geographical: bool = True,
) -> tuple[str, ...]:
    """The zone names of an E.164 number (digits, no '+'); empty when none is known."""
    for prefix, zones in overrides:  # longest first (the config sorts them)
        if digits.startswith(prefix):
            return zones
    if not geographical:
        return _country_zones(digits[:3])
    return _data_zones(digits[:TIMEZONE_LONGEST_PREFIX])


@lru_cache(maxsize=1024)
def _country_zones(head: str) -> tuple[str, ...]:
    """Every zone of the country whose calling code begins ``head``."""
    size = country_code_length(head)
    return tuple(z for z in TIMEZONE_DATA.get(head[:size], ()) if z != UNKNOWN_ZONE) if size else ()


@lru_cache(maxsize=65536)
def _data_zones(prefix: str) -> tuple[str, ...]:
    for n in range(len(prefix), 0, -1):
        zones = TIMEZONE_DATA.get(prefix[:n])
        if zones is not None:
            known = tuple(z for z in zones if z != UNKNOWN_ZONE)
            if known:
                return known
    return ()


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def outside_hours(hours: CallingHours, digits: str, at: datetime, *, geographical: bool = True) -> str | None:
    """``None`` when ``at`` is inside the window in every zone of the number; otherwise why not."""
    names = zone_names(digits, hours.zone_overrides, geographical=geographical)
    if not names:
        return f"no time zone known for +{digits} (add a zone override)"
    for name in names:
        tz = zone(name)
        if tz is None:
            return f"time zone {name} is not installed"
        local = at.astimezone(tz)
        kind, window = hours.window_on(local.date())
        if window is None:
            return f"{name} {local:%Y-%m-%d %H:%M} ({kind}): no calls"
        if not window.contains(local.time().replace(tzinfo=None)):
            return f"{name} {local:%Y-%m-%d %H:%M} ({kind}) outside {window}"
    return None


def parse_overrides(table: dict[str, object]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{"+86991": "Asia/Urumqi", "+1808": ["Pacific/Honolulu"]}`` -> sorted, longest prefix first.

    Raises ``ValueError`` naming the entry."""
    result = []
    for prefix, value in table.items():
        digits = prefix.removeprefix("+")
        if not digits.isdigit() or not 1 <= len(digits) <= 15:
            raise ValueError(f"zone override {prefix!r}: expected an E.164 prefix like +86991")
        names = (value,) if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"zone override {prefix!r}: expected a zone name or a list of them")
        for name in names:
            if zone(name) is None:
                raise ValueError(f"zone override {prefix!r}: {name!r} is not a time zone")
        result.append((digits, tuple(names)))
    return tuple(sorted(result, key=lambda item: -len(item[0])))


def parse_days(values: tuple[str, ...]) -> frozenset[int]:
    """``("sat", "sun")`` -> {5, 6}. Raises ``ValueError``."""
    days = set()
    for value in values:
        name = value.strip().lower()[:3]
        if name not in DAY_NAMES:
            raise ValueError(f"{value!r} is not a day (mon..sun)")
        days.add(DAY_NAMES.index(name))
    return frozenset(days)
