"""Searching the durable audit: what the console's decisions page and overview ask of a store.

Both backends implement ``AuditQueries`` beside ``ListStore``: SQLite with expression indexes on
the record's callee, caller ID, account and time (``schema``) and a per-minute rollup kept by a
trigger; Redis by reading its stream newest first, at most ``scan`` entries a search, and a
per-minute hash the append script counts into (``store.redis.audit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dncgate.audit_record import AuditRecord

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Every given filter must hold. ``callees``: E.164 forms (``+8613800138000``) of one dialled number
    (a number read with several tenants' dial plans has several); ``originator``: the account or caller ID."""

    tenants: tuple[str, ...]
    callees: tuple[str, ...] = ()
    originator: str = ""
    reason: str = ""
    since: str = ""  # ISO 8601 UTC, inclusive
    until: str = ""  # ISO 8601 UTC, exclusive
    before: str = ""  # the page cursor: ``AuditPage.next``
    limit: int = 50


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    next: str = ""  # the cursor of the next (older) page; "" when this is the last
    scanned_all: bool = True  # False: the backend stopped at its scan bound (Redis) before the end


@dataclass(frozen=True, slots=True)
class MinuteCount:
    minute: str  # ``2026-12-02T13:55`` (UTC)
    tenant: str
    verdict: str
    reason: str
    count: int


class AuditQueries(Protocol):
    async def audit_search(self, query: AuditQuery) -> AuditPage:
        """The newest records matching ``query`` (older than its cursor), newest first."""
        ...

    async def audit_record(self, decision_id: str) -> AuditRecord | None: ...

    async def audit_minutes(self, tenants: tuple[str, ...], since: str) -> list[MinuteCount]:
        """Decisions per minute from ``since`` (a minute, ``2026-12-02T13:55``), by tenant, verdict and reason."""
        ...
