"""The console's audit searches on the SQLite file (``store.audit_query``): pure SQL builders and
readers, run on the list store's reader connection.

``append`` writes each record with its searchable fields (``audit_keys``, plain columns: no JSON is
parsed to index them) and adds it to the per-minute counts, in the writer's transaction. Each
filter has its own one-column index, so a page reads about what it shows (``search_sql`` says in
which order). Records written before the console existed have no keys: the searches do not find
them (``dncgate audit tail`` and ``export`` do).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

from dncgate.audit_record import AuditRecord
from dncgate.store.audit_query import MAX_PAGE, AuditPage, AuditQuery, MinuteCount

_APPEND_KEYS = ("INSERT INTO audit_keys (seq, tenant, at, callee, account, caller_id, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)")
_COUNT = ("INSERT INTO audit_minutes (minute, tenant, verdict, reason, n) VALUES (?, ?, ?, ?, ?) "
          "ON CONFLICT (minute, tenant, verdict, reason) DO UPDATE SET n = n + excluded.n")


def append(conn: sqlite3.Connection, rows: list[tuple[str, AuditRecord]]) -> None:
    """Inside the writer's transaction (its write lock held): the records are inserted with one
    executemany (one already there, by decision id, is skipped by the unique index), then the new
    rows (the sequence numbers after the last one given) get their keys and counts."""
    if not rows:
        return
    last = conn.execute("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)").fetchone()[0]
    conn.executemany("INSERT OR IGNORE INTO audit (record) VALUES (?)", [(text,) for text, _ in rows])
    written = dict(conn.execute("SELECT json_extract(record, '$.decision_id'), seq FROM audit WHERE seq > ?",
                                (last,)).fetchall())
    new = [(written.pop(r.decision_id), r) for _, r in rows if r.decision_id in written]
    conn.executemany(_APPEND_KEYS, [(seq, r.tenant, r.at, r.callee, r.account, r.caller_id, r.reason)
                                    for seq, r in new])
    minutes = Counter((r.at[:16], r.tenant, r.verdict, r.reason) for _, r in new)
    conn.executemany(_COUNT, [(*key, n) for key, n in minutes.items()])


def _marks(values: tuple[str, ...]) -> str:
    return ",".join("?" * len(values))


def search_sql(query: AuditQuery) -> tuple[str, list[Any]]:
    """A number, an originator or a reason: its index, newest written first (the index keeps equal keys
    in sequence order), cursor ``s:<seq>``. Only a time range (or nothing): the time index, newest
    first by time, cursor ``t:<at>|<seq>``. '+' keeps the planner off an index the query does not lead with."""
    by_seq = bool(query.callees or query.originator or query.reason)
    plus = "+" if by_seq else ""
    where: list[str] = [f"k.tenant IN ({_marks(query.tenants)})"]
    args: list[Any] = list(query.tenants)
    if query.callees:
        where.append(f"k.callee IN ({_marks(query.callees)})")
        args += query.callees
    if query.originator:
        where.append("(k.account = ? OR k.caller_id = ?)")
        args += [query.originator, query.originator]
    if query.reason:
        where.append(f"{'+' if query.callees or query.originator else ''}k.reason = ?")
        args.append(query.reason)
    if query.since:
        where.append(f"{plus}k.at >= ?")
        args.append(query.since)
    if query.until:
        where.append(f"{plus}k.at < ?")
        args.append(query.until)
    kind, _, cursor = query.before.partition(":")
    if by_seq and kind == "s" and cursor.isdigit():
        where.append("k.seq < ?")
        args.append(int(cursor))
    elif not by_seq and kind == "t":
        at, _, seq = cursor.rpartition("|")
        where.append("(k.at < ? OR (k.at = ? AND k.seq < ?))")
        args += [at, at, int(seq) if seq.isdigit() else 0]
    order = "k.seq DESC" if by_seq else "k.at DESC, k.seq DESC"
    sql = (f"SELECT k.seq, k.at, a.record FROM audit_keys k JOIN audit a ON a.seq = k.seq "  # noqa: S608 -- '?' only
           f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?")
    args.append(min(max(query.limit, 1), MAX_PAGE) + 1)
    return sql, args


def search(conn: sqlite3.Connection, query: AuditQuery) -> AuditPage:
    if not query.tenants:
        return AuditPage([])
    sql, args = search_sql(query)
    rows = conn.execute(sql, args).fetchall()
    limit = min(max(query.limit, 1), MAX_PAGE)
    records = [AuditRecord.from_json(r[2]) for r in rows[:limit]]
    cursor = ""
    if len(rows) > limit:
        seq, at = rows[limit - 1][0], rows[limit - 1][1]
        by_seq = bool(query.callees or query.originator or query.reason)
        cursor = f"s:{seq}" if by_seq else f"t:{at}|{seq}"
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
