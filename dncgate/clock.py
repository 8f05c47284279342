"""The wall clock as dncgate reads it and writes it down: UTC datetimes and ISO 8601.

``open_app`` takes one ``Clock`` (``utc_now`` unless a test or serve injects one) and hands it to
every component that tells time (the gate, the list's freshness, the consent ledger, the early
warning, enforcement), so an app has one time source. Like :mod:`dncgate.errors`, a bottom room:
it imports nothing from dncgate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

__all__ = ["Clock", "now_iso", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, in UTC: the clock an app has unless one is injected."""
    return datetime.now(UTC)


def now_iso(timespec: Literal["seconds", "milliseconds", "microseconds"] = "seconds") -> str:
    """Now, in UTC, as ``2026-11-27T02:00:00+00:00`` (to the second unless ``timespec`` says finer)."""
    return utc_now().isoformat(timespec=timespec)
