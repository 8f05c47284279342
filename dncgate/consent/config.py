"""The ``[consent]`` configuration: category taxonomy and retention period."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# The default marketing taxonomy (code -> what it covers).
DEFAULT_TAXONOMY: dict[str, str] = {
    "finance": "finance and insurance",
    "real_estate": "real estate",
    "education": "education",
    "health": "health",
    "consumer": "consumer goods and cars",
    "telecom": "telecom, media and IT",
    "travel": "travel and leisure",
    "food": "food",
}
MIN_RETENTION_MONTHS = 5
_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class ConsentConfig:
    categories: tuple[str, ...] = tuple(DEFAULT_TAXONOMY)
    retention_months: int = MIN_RETENTION_MONTHS


def parse_categories(values: tuple[str, ...]) -> tuple[str, ...]:
    """Category codes, in order. Raises ``ValueError``."""
    if not values:
        raise ValueError("at least one category is needed")
    for value in values:
        if not _CODE.fullmatch(value):
            raise ValueError(f"category {value!r}: lowercase letters, digits and '_', starting with a letter")
    if len(set(values)) != len(values):
        raise ValueError("categories repeat")
    return tuple(values)


def retention_cutoff(now: datetime, months: int) -> datetime:
    """``now`` minus ``months`` calendar months (the day clamped to the month's end)."""
    month_index = now.year * 12 + now.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    for day in range(now.day, 27, -1):
        try:
            return now.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return now.replace(year=year, month=month, day=min(now.day, 28))
