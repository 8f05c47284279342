"""``dncgate audit tail|export``: the durable audit, as readable lines or (``--json``) JSON lines,
filtered by tenant, number, reason and time."""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from dncgate.audit_record import AuditRecord
from dncgate.cli import codes
from dncgate.cli.base import add_json, command, group, with_store
from dncgate.model import Reason, TenantPolicy
from dncgate.numbers import ShortNumber, Subscriber, normalise
from dncgate.settings import Settings
from dncgate.store.protocol import ListStore


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return value


def iso_time(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset (``2026-12-01T08:00:00+08:00``, ``...Z``), or a date
    (``2026-12-01``: its start, UTC)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time or date") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or +08:00)")
    return parsed


def add_commands(sub: Any) -> None:
    audit = group(sub, "audit", "read the durable audit")
    tail = command(audit, "tail", _audit_tail, "the newest decisions (that match the filters), newest last")
    tail.add_argument("-n", type=_positive, default=20, help="how many records, newest last (1 or more; default 20)")
    _add_filters(tail)
    export = command(audit, "export", _audit_export, "every retained decision (that matches the filters), oldest "
                     "first")
    export.add_argument("--output", type=Path, help="a file (default: standard output)")
    _add_filters(export)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    add_json(parser)
    parser.add_argument("--tenant", help="only this tenant's decisions")
    parser.add_argument("--number", help="only calls to this number, in any form it may be dialled (read through "
                        "each record's tenant's dial plan, as the call was)")
    parser.add_argument("--reason", choices=[r.value for r in Reason], metavar="REASON",
                        help="only decisions for this reason (national_dnc, tenant_dnc, check_failed, ...)")
    parser.add_argument("--since", type=iso_time, help="only decisions at or after this time (ISO 8601 with "
                        "offset, or a date: its start in UTC)")
    parser.add_argument("--until", type=iso_time, help="only decisions before this time (same forms)")


@dataclass(frozen=True)
class AuditFilter:
    """Which records ``audit tail|export`` prints (every field None: all of them)."""

    tenant: str | None = None
    number: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tenants: Mapping[str, TenantPolicy] | None = None  # the configured dial plans, for ``number``

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.tenant, self.number, self.reason, self.since, self.until))

    def matcher(self) -> Callable[[AuditRecord], bool]:
        callees: dict[str, str | None] = {}  # tenant -> the number as that tenant's calls record it

        def callee_for(tenant: str) -> str | None:
            if tenant not in callees:
                policy = (self.tenants or {}).get(tenant) or TenantPolicy(name=tenant)
                callees[tenant] = _callee_text(normalise(self.number or "", policy.dial_plan))
            return callees[tenant]

        def matches(record: AuditRecord) -> bool:
            if self.tenant is not None and record.tenant != self.tenant:
                return False
            if self.reason is not None and record.reason != self.reason:
                return False
            if self.since is not None or self.until is not None:
                at = datetime.fromisoformat(record.at)
                at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
                if (self.since is not None and at < self.since) or (self.until is not None and at >= self.until):
                    return False
            if self.number is not None:
                callee = callee_for(record.tenant)
                return record.callee == callee if callee else record.dialled == self.number
            return True

        return matches


def _callee_text(callee: object) -> str | None:
    """The audit's ``callee`` for a normalised number (None: not a number; match what was dialled)."""
    if isinstance(callee, Subscriber):
        return callee.e164
    if isinstance(callee, ShortNumber):
        return callee.digits
    return None


def filter_of(args: argparse.Namespace, config: Settings) -> AuditFilter:
    return AuditFilter(args.tenant, args.number, args.reason, args.since, args.until, config.tenants)


async def matching(store: ListStore, wanted: AuditFilter) -> AsyncIterator[AuditRecord]:
    """Every retained record that ``wanted`` takes, oldest first."""
    matches = wanted.matcher()
    async for record in store.audit_export():
        if matches(record):
            yield record


async def newest(store: ListStore, wanted: AuditFilter, n: int) -> list[AuditRecord]:
    """The newest ``n`` records that ``wanted`` takes, oldest first (with filters: read from the start)."""
    if wanted.empty:
        return await store.audit_tail(n)
    last: collections.deque[AuditRecord] = collections.deque(maxlen=n)
    async for record in matching(store, wanted):
        last.append(record)
    return list(last)


def text_line(record: AuditRecord) -> str:
    """One decision, readable: when, verdict and reason, tenant, callee, what was dialled, door, id."""
    outcome = "" if record.outcome == record.verdict else f" (would {record.outcome})"
    return (f"{record.at}  {record.verdict.upper():<6} {record.reason:<20} tenant={record.tenant} "
            f"callee={record.callee or '-'} dialled={record.dialled!r} purpose={record.purpose} door={record.door} "
            f"account={record.account}{outcome} id={record.decision_id}")


def _write(record: AuditRecord, as_json: bool, out: TextIO) -> None:
    out.write((record.to_json() if as_json else text_line(record)) + "\n")


async def _audit_tail(args: argparse.Namespace, config: Settings) -> int:
    async def run(store: ListStore) -> int:
        for record in await newest(store, filter_of(args, config), args.n):
            _write(record, args.json, sys.stdout)
        return codes.OK

    return await with_store(config, run)


async def _audit_export(args: argparse.Namespace, config: Settings) -> int:
    async def run(store: ListStore) -> int:
        out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
        count = 0
        try:
            async for record in matching(store, filter_of(args, config)):
                _write(record, args.json, out)
                count += 1
        finally:
            if args.output:
                out.close()
        print(f"exported {count:,} records", file=sys.stderr)
        return codes.OK

    return await with_store(config, run)
