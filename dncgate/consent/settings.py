"""Reading ``[consent]`` and ``[tenants.NAME.hours]`` from the configuration (called by ``dncgate.config``)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from dncgate.consent.config import DEFAULT_TAXONOMY, MIN_RETENTION_MONTHS, ConsentConfig, parse_categories
from dncgate.hours import DEFAULT_WINDOW, CallingHours, parse_days, parse_overrides, parse_window

if TYPE_CHECKING:
    from dncgate.config import _Reader


def consent_settings(table: _Reader) -> ConsentConfig:
    try:
        categories = parse_categories(table.get("categories", tuple, list(DEFAULT_TAXONOMY)))
    except ValueError as exc:
        raise table.error("categories", str(exc)) from None
    months = table.get("retention_months", int, MIN_RETENTION_MONTHS)
    if months < MIN_RETENTION_MONTHS:
        raise table.error("retention_months", f"must be at least {MIN_RETENTION_MONTHS} (it can only be raised)")
    table.check_unknown()
    return ConsentConfig(categories=categories, retention_months=months)


def hours_settings(table: _Reader) -> CallingHours | None:
    """The tenant's calling window; on by default (08:00-21:00 every day); ``enabled = false`` turns it off."""
    enabled = table.get("enabled", bool, True)
    windows: dict[str, Any] = {}
    for key, default in (("weekday", str(DEFAULT_WINDOW)), ("weekend", str(DEFAULT_WINDOW)), ("holiday", "closed")):
        try:
            windows[key] = parse_window(table.get(key, str, default))
        except ValueError as exc:
            raise table.error(key, str(exc)) from None
    try:
        weekend_days = parse_days(table.get("weekend_days", tuple, ["sat", "sun"]))
    except ValueError as exc:
        raise table.error("weekend_days", str(exc)) from None
    holidays = set()
    for value in table.get("holidays", tuple, []):
        try:
            holidays.add(date.fromisoformat(value))
        except ValueError:
            raise table.error("holidays", f"{value!r} is not a date like 2026-10-01") from None
    overrides_t = table.table("zone_overrides")
    try:
        overrides = parse_overrides(dict(overrides_t.data))
    except ValueError as exc:
        raise table.error("zone_overrides", str(exc)) from None
    table.check_unknown()
    if not enabled:
        return None
    return CallingHours(weekend_days=weekend_days, holidays=frozenset(holidays), zone_overrides=overrides, **windows)
