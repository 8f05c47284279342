"""The wall clock as dncgate writes it down: ISO 8601 in UTC.

Like :mod:`dncgate.errors`, a bottom room: it imports nothing from dncgate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

__all__ = ["now_iso"]


def now_iso(timespec: Literal["seconds", "milliseconds", "microseconds"] = "seconds") -> str:
    """Now, in UTC, as ``2026-11-27T02:00:00+00:00`` (to the second unless ``timespec`` says finer)."""
    return datetime.now(UTC).isoformat(timespec=timespec)
