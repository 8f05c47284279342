"""Audit records in a Redis stream: XADD with an approximate MAXLEN, read back with XRANGE pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import Redis

from dncgate.audit_record import AuditRecord
from dncgate.store.errors import StoreCorrupt
from dncgate.store.redis.conn import redis_errors
from dncgate.store.redis.keys import AUDIT

FIELD = b"r"

Entry = tuple[bytes, dict[bytes, bytes]]


def _entries(reply: Any) -> list[Entry]:
    if not isinstance(reply, list):
        raise StoreCorrupt(f"{AUDIT}: expected a list of stream entries, got {type(reply).__name__}")
    return reply


def _decode(entry: Entry) -> AuditRecord:
    entry_id, fields = entry
    raw = fields.get(FIELD) if isinstance(fields, dict) else None
    if raw is None:
        raise StoreCorrupt(f"{AUDIT} entry {entry_id!r}: no {FIELD!r} field")
    try:
        return AuditRecord.from_json(raw)
    except (ValueError, TypeError) as exc:
        raise StoreCorrupt(f"{AUDIT} entry {entry_id!r}: not an audit record ({exc})") from exc


async def append(client: Redis, records: Sequence[AuditRecord], maxlen: int) -> None:
    if not records:
        return
    pipe = client.pipeline(transaction=False)
    for record in records:
        pipe.xadd(AUDIT, {FIELD: record.to_json()}, maxlen=maxlen, approximate=True)
    with redis_errors("audit append"):
        await pipe.execute()


async def tail(client: Redis, limit: int) -> list[AuditRecord]:
    if limit <= 0:
        return []
    with redis_errors("audit tail"):
        entries = _entries(await client.xrevrange(AUDIT, max="+", min="-", count=limit))
    return [_decode(entry) for entry in reversed(entries)]


async def export(client: Redis, page: int) -> AsyncIterator[AuditRecord]:
    start = b"-"
    while True:
        with redis_errors("audit export"):
            entries = _entries(await client.xrange(AUDIT, min=start, max="+", count=page))
        for entry in entries:
            yield _decode(entry)
        if len(entries) < page:
            return
        start = b"(" + entries[-1][0]
