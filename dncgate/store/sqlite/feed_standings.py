"""The carrier's feed standings on the SQLite file (``enforcement.feed_standings``): read for the feed
a carrier serves, applied from the feed a reseller syncs. Both run on the case store's connection.

Applied rows go into ``originator_standing``, the table the gate's one-statement lookup reads, with
case id ``FEED_CASE_ID``; one ``BEGIN IMMEDIATE`` transaction compares the version (``case_meta``
``feed_standings_version:<tenant>``), writes and removes, so the gate sees the whole document or
none of it. A row of the reseller's own open case is kept, unless the feed suspends what the case
only restricts; when the feed lifts a row it wrote over such a case, the case's standing comes back.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from dncgate.enforcement.feed_standings import FEED_CASE_ID, FeedStandings, StandingsApplied
from dncgate.enforcement.model import Case, encode_standing
from dncgate.store.sqlite.tx import write_transaction

_VERSION_KEY = "feed_standings_version:"


def read_standings(conn: sqlite3.Connection, tenant: str) -> FeedStandings:
    """What the gate enforces on the tenant's originators now, and the time of its last case change."""
    rows = conn.execute("SELECT originator, standing FROM originator_standing WHERE tenant = ?", (tenant,)).fetchall()
    latest = conn.execute("SELECT max(updated_at) FROM cases WHERE tenant = ?", (tenant,)).fetchone()[0]
    version = int(datetime.fromisoformat(latest).timestamp() * 1000) if latest else 0
    return FeedStandings(tenant, version, {str(key): str(value) for key, value in rows})


def apply_standings(conn: sqlite3.Connection, tenant: str, feed: FeedStandings) -> StandingsApplied:
    """Make the feed's rows of ``tenant`` what ``feed`` says, in one transaction."""
    with write_transaction(conn) as tx:
        row = tx.execute("SELECT value FROM case_meta WHERE key = ?", (_VERSION_KEY + tenant,)).fetchone()
        applied = int(row[0]) if row else -1
        if feed.version < applied:
            return StandingsApplied(tenant, feed.version, refused=f"version {feed.version} is older than the "
                                                                  f"applied {applied}")
        current = {str(k): (str(v), str(c)) for k, v, c in tx.execute(
            "SELECT originator, standing, case_id FROM originator_standing WHERE tenant = ?", (tenant,))}
        added = changed = removed = kept = 0
        for key, (_, case_id) in current.items():
            if case_id == FEED_CASE_ID and key not in feed.standings:
                _lift(tx, tenant, key)
                removed += 1
        for key, value in feed.standings.items():
            have = current.get(key)
            if have is None:
                added += 1
            elif have[1] == FEED_CASE_ID or (value == "s" and have[0] != "s"):
                if have[0] == value:
                    continue
                changed += 1
            else:
                kept += 1
                continue
            tx.execute("INSERT INTO originator_standing (tenant, originator, standing, case_id) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (tenant, originator) DO UPDATE SET standing = excluded.standing, "
                       "case_id = excluded.case_id", (tenant, key, value, FEED_CASE_ID))
        tx.execute("INSERT INTO case_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                   "value = excluded.value", (_VERSION_KEY + tenant, str(feed.version)))
    return StandingsApplied(tenant, feed.version, added, changed, removed, kept)


def _lift(tx: sqlite3.Connection, tenant: str, key: str) -> None:
    """Remove the feed's row of ``key``; the reseller's own open case's standing, if it has one, comes back."""
    row = tx.execute("SELECT case_id, record FROM cases WHERE tenant = ? AND originator = ? AND state != 'closed'",
                     (tenant, key)).fetchone()
    own = encode_standing(Case.from_json(row[1])) if row else None
    if row is None or own is None:
        tx.execute("DELETE FROM originator_standing WHERE tenant = ? AND originator = ? AND case_id = ?",
                   (tenant, key, FEED_CASE_ID))
        return
    tx.execute("UPDATE originator_standing SET standing = ?, case_id = ? WHERE tenant = ? AND originator = ?",
               (own, row[0], tenant, key))
