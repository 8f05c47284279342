"""What a consent ledger backend offers, and the pieces both backends share.

Backends: ``store.sqlite.ledger`` (the same file as the SQLite list store) and
``store.redis.ledger`` (the same Redis). Every method may raise ``StoreError``; ``append`` and
``purge`` raise ``LedgerError`` for a record that must not be written.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from dncgate.consent.model import (
    GENESIS,
    Action,
    ConsentState,
    LedgerError,
    LedgerEvent,
    Preferences,
    iso,
    parse_time,
)
from dncgate.settings import ConsentSettings

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChainPoint:
    """A position in a tenant's chain: the record ``seq`` and its hash (0 and GENESIS: the start)."""

    seq: int = 0
    hash: str = GENESIS
    recorded_at: datetime | None = None

    def encode(self) -> str:
        return f"{self.seq} {self.hash} {iso(self.recorded_at) or '-'}"

    @classmethod
    def decode(cls, raw: str | bytes | None) -> ChainPoint:
        if raw is None:
            return cls()
        text = raw.decode() if isinstance(raw, bytes) else raw
        seq, digest, at = text.split(" ")
        return cls(int(seq), digest, None if at == "-" else parse_time(at, "chain point"))


class Ledger(Protocol):
    config: ConsentSettings

    async def append(self, event: LedgerEvent) -> LedgerEvent:
        """Record ``event`` and fold it into the current state in one transaction; returns it sealed
        (seq, recorded_at, hashes). Once this returns, every later ``facts()`` sees the new state."""
        ...

    async def consents(self, tenant: str, callee: int) -> dict[str, ConsentState]:
        """Entity -> current consent of the callee."""
        ...

    async def preferences(self, tenant: str, callee: int) -> Preferences: ...

    def history(self, tenant: str, callee: int | None = None) -> AsyncIterator[LedgerEvent]:
        """Retained records, oldest first (of one callee when given)."""
        ...

    async def head(self, tenant: str) -> ChainPoint: ...

    async def anchor(self, tenant: str) -> ChainPoint:
        """Where the retained chain starts: the last record purged, or the genesis."""
        ...

    async def purge(self, tenant: str, before: datetime, *, by: str) -> LedgerEvent:
        """Delete the records older than ``before`` (refused inside the retention period) and
        record the purge itself; returns the purge record."""
        ...

    async def outbox(self, tenant: str, limit: int = 100) -> list[LedgerEvent]:
        """Preference records waiting for upload to the national platform, oldest first."""
        ...

    async def ack_outbox(self, tenant: str, count: int) -> None:
        """Drop the oldest ``count`` records of the outbox (uploaded)."""
        ...

    async def close(self) -> None: ...


async def record_consent(ledger: Ledger, event: LedgerEvent) -> tuple[LedgerEvent, ConsentState]:
    """Append a grant or a revoke; returns it sealed and the consent it leaves for its entity (what
    ``POST /v1/consents`` and ``dncgate consent grant|revoke`` both answer with)."""
    sealed = await ledger.append(event)
    states = await ledger.consents(sealed.tenant, sealed.digits)
    return sealed, states[sealed.entity]


def check_purge(config: ConsentSettings, before: datetime, now: datetime) -> None:
    limit = retention_cutoff(now, config.retention_months)
    if before > limit:
        raise LedgerError(
            f"purge before {iso(before)}: inside the retention period of {config.retention_months} months "
            f"(records from {iso(limit)} on are kept)"
        )


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


def purge_record(tenant: str, before: datetime, by: str, deleted: int, last: ChainPoint) -> LedgerEvent:
    detail = json.dumps({"before": iso(before), "deleted": deleted, "through_seq": last.seq,
                         "anchor_hash": last.hash, "by": by}, sort_keys=True)
    return LedgerEvent(tenant=tenant, action=Action.PURGE, detail=detail)


def is_upload(event: LedgerEvent) -> bool:
    """Preference registrations go to the national platform (the registry work uploads them)."""
    return event.action in {Action.DECLINE, Action.WITHDRAW}
