"""Audit records in a Redis stream: XADD with an approximate MAXLEN, read back with XRANGE pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from dncgate.audit_record import AuditRecord
from dncgate.store.errors import StoreCorrupt
from dncgate.store.redis.conn import Client, redis_errors
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


# The decision ids of the last DEDUPE_WINDOW records (a sorted set scored by stream time, same hash
# tag): a record replayed from the audit spool after a crash is not added twice. A spool replays
# at most its unconfirmed records, far fewer than this; ~100 bytes of Redis memory per id.
AUDIT_IDS = AUDIT + ":ids"
DEDUPE_WINDOW = 200_000
# The console's charts: decisions per minute in ``dnc:{audit}:m:<minute>`` (a hash of
# ``tenant|verdict|reason`` -> count, same hash tag), counted by the append script, kept ROLLUP_TTL.
MINUTES = AUDIT + ":m:"
ROLLUP_TTL = 3 * 86_400
_APPEND = """
local added = 0
for i = 4, #ARGV, 4 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'r', ARGV[i + 1])
    redis.call('ZADD', KEYS[2], tonumber(string.match(id, '^%d+')), ARGV[i])
    local minute = KEYS[1] .. ':m:' .. ARGV[i + 2]
    redis.call('HINCRBY', minute, ARGV[i + 3], 1)
    redis.call('EXPIRE', minute, ARGV[3])
    added = added + 1
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[2]) + 1))
return added
"""


async def append(client: Client, records: Sequence[AuditRecord], maxlen: int) -> None:
    """XADD each record whose decision id is not among the last ``DEDUPE_WINDOW`` (one script)."""
    if not records:
        return
    args: list[str | int] = [maxlen, DEDUPE_WINDOW, ROLLUP_TTL]
    for record in records:
        args += [record.decision_id, record.to_json(), record.at[:16],
                 f"{record.tenant}|{record.verdict}|{record.reason}"]
    with redis_errors("audit append"):
        await client.eval(_APPEND, 2, AUDIT, AUDIT_IDS, *args)


async def tail(client: Client, limit: int) -> list[AuditRecord]:
    if limit <= 0:
        return []
    with redis_errors("audit tail"):
        entries = _entries(await client.xrevrange(AUDIT, max="+", min="-", count=limit))
    return [_decode(entry) for entry in reversed(entries)]


async def export(client: Client, page: int) -> AsyncIterator[AuditRecord]:
    start = b"-"
    while True:
        with redis_errors("audit export"):
            entries = _entries(await client.xrange(AUDIT, min=start, max="+", count=page))
        for entry in entries:
            yield _decode(entry)
        if len(entries) < page:
            return
        start = b"(" + entries[-1][0]
