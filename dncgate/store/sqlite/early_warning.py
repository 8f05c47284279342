"""The early warning's embedded store: each originator's window state and every alert, in SQLite.

Its own file (``[early_warning] path``: the list store may be Redis) and its own connection on its
own thread. ``save_windows`` writes a checkpoint of the states that changed in one transaction; a
restart reads them back (``windows``), so it loses at most the facts since the last checkpoint.
Alerts are written when raised (``add``, idempotent by alert id) and acknowledged once (who and
when kept): ``dncgate alerts list|ack`` and ``/v1/alerts`` read and write the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from dncgate.early_warning.alerts import Alert, alert_of
from dncgate.store.errors import StoreCorrupt
from dncgate.store.sqlite.tx import WorkerStore, write_transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS ew_windows (
    tenant TEXT NOT NULL, originator TEXT NOT NULL, state BLOB NOT NULL, seen INTEGER NOT NULL,
    PRIMARY KEY (tenant, originator)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ew_alerts (
    alert_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, raised_at TEXT NOT NULL, record TEXT NOT NULL,
    acknowledged_by TEXT NOT NULL DEFAULT '', acknowledged_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ew_alerts_tenant ON ew_alerts (tenant, raised_at);
"""
Row = tuple[str, str, bytes, int]  # tenant, originator, state, seen (epoch seconds)


class SqliteEarlyWarningStore(WorkerStore):
    schema, part = SCHEMA, "early-warning"

    # -- window state -------------------------------------------------------------------------

    async def save_windows(self, rows: Iterable[Row]) -> int:
        return await self._run(self._save_windows, list(rows))

    def _save_windows(self, rows: list[Row]) -> int:
        with write_transaction(self._c()) as conn:
            conn.executemany("INSERT INTO ew_windows (tenant, originator, state, seen) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (tenant, originator) DO UPDATE SET state = excluded.state, "
                             "seen = excluded.seen", rows)
        return len(rows)

    async def forget_windows(self, before: int) -> int:
        """Drop the states of originators not seen since ``before`` (idle: the analyser dropped them too)."""
        def forget() -> int:
            with write_transaction(self._c()) as conn:
                return conn.execute("DELETE FROM ew_windows WHERE seen < ?", (before,)).rowcount
        return await self._run(forget)

    async def windows(self) -> list[Row]:
        return await self._run(lambda: [(str(t), str(o), bytes(s), int(n)) for t, o, s, n in self._c().execute(
            "SELECT tenant, originator, state, seen FROM ew_windows")])

    # -- alerts -------------------------------------------------------------------------------

    async def add(self, alert: Alert) -> bool:
        """Record ``alert``; False if it was already there (the same crossing, raised again after a restart)."""
        def insert() -> bool:
            with write_transaction(self._c()) as conn:
                return conn.execute(
                    "INSERT INTO ew_alerts (alert_id, tenant, raised_at, record) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (alert_id) DO NOTHING",
                    (alert.alert_id, alert.originator.tenant, alert.raised_at.astimezone(UTC).isoformat(),
                     json.dumps(alert.as_dict(), sort_keys=True))).rowcount == 1
        return await self._run(insert)

    async def alerts(self, tenant: str, *, unacknowledged: bool = False,
                     limit: int = 100) -> list[tuple[Alert, str]]:
        """Newest first, each with who acknowledged it ("" if nobody yet)."""
        where = " AND acknowledged_by = ''" if unacknowledged else ""
        rows = await self._run(lambda: self._c().execute(
            f"SELECT record, acknowledged_by FROM ew_alerts WHERE tenant = ?{where} "  # noqa: S608 -- constant
            "ORDER BY raised_at DESC, alert_id LIMIT ?", (tenant, limit)).fetchall())
        return [(_alert(record), str(by)) for record, by in rows]

    async def acknowledge(self, tenant: str, alert_id: str, actor: str) -> tuple[Alert, str] | None:
        """Mark the alert acknowledged by ``actor`` (the first acknowledgement stays); None: no such alert."""
        def ack() -> tuple[str, str] | None:
            with write_transaction(self._c()) as conn:
                conn.execute("UPDATE ew_alerts SET acknowledged_by = ?, acknowledged_at = ? "
                             "WHERE alert_id = ? AND tenant = ? AND acknowledged_by = ''",
                             (actor, datetime.now(UTC).isoformat(), alert_id, tenant))
                row = conn.execute("SELECT record, acknowledged_by FROM ew_alerts WHERE alert_id = ? AND tenant = ?",
                                   (alert_id, tenant)).fetchone()
            return None if row is None else (str(row[0]), str(row[1]))
        found = await self._run(ack)
        return None if found is None else (_alert(found[0]), found[1])


def _alert(record: str) -> Alert:
    try:
        return alert_of(json.loads(record))
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreCorrupt(f"early-warning alert record: {exc}") from None
