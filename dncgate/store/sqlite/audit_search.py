"""The console's audit searches on the SQLite file (``store.audit_query``): pure SQL builders and
readers, run on the list store's reader connection.

A page is newest first by the record's time, then its sequence; the cursor is ``at|seq`` of the
last record shown. The expression indexes of ``schema`` answer a number, an originator or a time
range without reading the table; a filter on reason or tenant alone reads newest first until a
page is full.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from dncgate.audit_record import AuditRecord
from dncgate.store.audit_query import MAX_PAGE, AuditPage, AuditQuery, MinuteCount

_AT = "json_extract(record, '$.at')"


def _marks(values: tuple[str, ...]) -> str:
    return ",".join("?" * len(values))


def search_sql(query: AuditQuery) -> tuple[str, list[Any]]:
    # the tenant's (tenant, at) index only when nothing narrower is asked: '+' keeps the planner off it
    narrower = bool(query.callees or query.originator or query.reason)
    where: list[str] = [f"{'+' if narrower else ''}json_extract(record, '$.tenant') IN ({_marks(query.tenants)})"]
    args: list[Any] = list(query.tenants)
    if query.callees:
        where.append(f"json_extract(record, '$.callee') IN ({_marks(query.callees)})")
        args += query.callees
    if query.originator:
        where.append("(json_extract(record, '$.account') = ? OR json_extract(record, '$.caller_id') = ?)")
        args += [query.originator, query.originator]
    if query.reason:
        where.append("json_extract(record, '$.reason') = ?")
        args.append(query.reason)
    if query.since:
        where.append(f"{_AT} >= ?")
        args.append(query.since)
    if query.until:
        where.append(f"{_AT} < ?")
        args.append(query.until)
    if query.before:
        at, _, seq = query.before.rpartition("|")
        where.append(f"({_AT} < ? OR ({_AT} = ? AND seq < ?))")
        args += [at, at, int(seq) if seq.isdigit() else 0]
    sql = (f"SELECT seq, record FROM audit WHERE {' AND '.join(where)} "  # noqa: S608 -- only fixed SQL and '?' marks
           f"ORDER BY {_AT} DESC, seq DESC LIMIT ?")
    args.append(min(max(query.limit, 1), MAX_PAGE) + 1)
    return sql, args


def search(conn: sqlite3.Connection, query: AuditQuery) -> AuditPage:
    if not query.tenants:
        return AuditPage([])
    sql, args = search_sql(query)
    rows = conn.execute(sql, args).fetchall()
    limit = min(max(query.limit, 1), MAX_PAGE)
    records = [AuditRecord.from_json(r[1]) for r in rows[:limit]]
    cursor = f"{records[-1].at}|{rows[limit - 1][0]}" if len(rows) > limit else ""
    return AuditPage(records, cursor)


def record(conn: sqlite3.Connection, decision_id: str) -> AuditRecord | None:
    row = conn.execute("SELECT record FROM audit WHERE json_extract(record, '$.decision_id') = ?",
                       (decision_id,)).fetchone()
    return AuditRecord.from_json(row[0]) if row else None


def minutes(conn: sqlite3.Connection, tenants: tuple[str, ...], since: str) -> list[MinuteCount]:
    if not tenants:
        return []
    rows = conn.execute(
        f"SELECT minute, tenant, verdict, reason, n FROM audit_minutes WHERE minute >= ? "  # noqa: S608 -- '?' marks
        f"AND tenant IN ({_marks(tenants)}) ORDER BY minute", (since, *tenants)).fetchall()
    return [MinuteCount(*row) for row in rows]
