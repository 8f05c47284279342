"""The console's audit searches on Redis (``store.audit_query``).

The stream has no secondary index: a search reads it newest first in pages (XREVRANGE) and keeps
what matches, reading at most ``scan`` entries (``AuditPage.scanned_all`` says when it stopped
there). The cursor is the stream id of the last entry read. The per-minute counts are the hashes
the append script keeps (``audit.MINUTES``), one HGETALL each in one pipeline.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dncgate.audit_record import AuditRecord
from dncgate.store.audit_query import MAX_PAGE, AuditPage, AuditQuery, MinuteCount
from dncgate.store.redis.audit import MINUTES, _decode, _entries
from dncgate.store.redis.conn import Client, redis_errors
from dncgate.store.redis.keys import AUDIT

SCAN = 200_000  # entries one search reads at most
PAGE = 2_000
MAX_MINUTES = 2 * 1440


def matches(query: AuditQuery, record: AuditRecord) -> bool:
    return (record.tenant in query.tenants
            and (not query.callees or record.callee in query.callees)
            and (not query.originator or query.originator in (record.account, record.caller_id))
            and (not query.reason or record.reason == query.reason)
            and (not query.since or record.at >= query.since)
            and (not query.until or record.at < query.until))


async def search(client: Client, query: AuditQuery, *, scan: int = SCAN) -> AuditPage:
    limit = min(max(query.limit, 1), MAX_PAGE)
    found: list[AuditRecord] = []
    start = ("(" + query.before) if query.before else "+"
    read = 0
    while read < scan:
        with redis_errors("audit search"):
            entries = _entries(await client.xrevrange(AUDIT, max=start, min="-", count=min(PAGE, scan - read)))
        for entry_id, fields in entries:
            read += 1
            record = _decode((entry_id, fields))
            if matches(query, record):
                found.append(record)
                if len(found) == limit:
                    return AuditPage(found, entry_id.decode())
            if query.since and record.at < query.since:  # older than the range: nothing further matches
                return AuditPage(found)
        if len(entries) < PAGE:
            return AuditPage(found)
        start = "(" + entries[-1][0].decode()
    return AuditPage(found, start.removeprefix("("), scanned_all=False)


async def record(client: Client, decision_id: str, *, scan: int = SCAN) -> AuditRecord | None:
    start, read = "+", 0
    while read < scan:
        with redis_errors("audit record"):
            entries = _entries(await client.xrevrange(AUDIT, max=start, min="-", count=PAGE))
        for entry in entries:
            read += 1
            found = _decode(entry)
            if found.decision_id == decision_id:
                return found
        if len(entries) < PAGE:
            return None
        start = "(" + entries[-1][0].decode()
    return None


async def minutes(client: Client, tenants: tuple[str, ...], since: str, now: datetime) -> list[MinuteCount]:
    first = datetime.fromisoformat(since + ":00+00:00")
    names: list[str] = []
    at = first
    while at <= now and len(names) < MAX_MINUTES:
        names.append(at.strftime("%Y-%m-%dT%H:%M"))
        at += timedelta(minutes=1)
    with redis_errors("audit minutes"):
        async with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(MINUTES + name)
            replies = await pipe.execute()
    counts: list[MinuteCount] = []
    for name, reply in zip(names, replies, strict=True):
        for key, value in (reply or {}).items():
            tenant, verdict, reason = key.decode().split("|", 2)
            if tenant in tenants:
                counts.append(MinuteCount(name, tenant, verdict, reason, int(value)))
    return counts
