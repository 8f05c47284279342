"""The carrier's feed standings on the SQLite file (``enforcement.feed_standings``): read for the feed
a carrier serves, applied from the feed a reseller syncs. Both run on the case store's connection.

What the feed says is kept in ``feed_standing`` (which the gate does not read); what the gate
enforces stays in ``originator_standing`` (its one-statement lookup), the ``strictest`` of the
feed's and the originator's open case's, rewritten by ``write_enforced`` whenever either changes:
an apply (one ``BEGIN IMMEDIATE`` transaction with the version check, ``case_meta``
``feed_standings_version:<tenant>``) or a case's append.

The version a carrier serves is ``case_meta`` ``standings_version:<tenant>``, bumped in the same
transaction as whatever changes the tenant's standings (a case's append: to ``max(previous + 1,
the step's time in ms)``; an apply that changed something: ``previous + 1``), so it never goes
backwards when the carrier's clock does. A file from before it starts from its tenant's last
case change.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from dncgate.enforcement.feed_standings import FEED_CASE_ID, FeedStandings, StandingsApplied, strictest
from dncgate.enforcement.model import Case, encode_standing
from dncgate.store.sqlite.tx import write_transaction

_VERSION_KEY = "feed_standings_version:"  # a reseller's: the version of the document it applied
_SERVED_KEY = "standings_version:"  # a carrier's: the version it serves


def read_standings(conn: sqlite3.Connection, tenant: str) -> FeedStandings:
    """What the gate enforces on the tenant's originators now, and its version, read in one snapshot."""
    conn.execute("BEGIN")
    try:
        rows = conn.execute("SELECT originator, standing FROM originator_standing WHERE tenant = ?",
                            (tenant,)).fetchall()
        version = served_version(conn, tenant)
    finally:
        conn.execute("COMMIT")
    return FeedStandings(tenant, version, {str(key): str(value) for key, value in rows})


def served_version(conn: sqlite3.Connection, tenant: str) -> int:
    """The version of the tenant's standings a carrier serves (0: no change yet)."""
    row = conn.execute("SELECT value FROM case_meta WHERE key = ?", (_SERVED_KEY + tenant,)).fetchone()
    if row is not None:
        return int(row[0])
    latest = conn.execute("SELECT max(updated_at) FROM cases WHERE tenant = ?", (tenant,)).fetchone()[0]
    return int(datetime.fromisoformat(latest).timestamp() * 1000) if latest else 0  # a file from before the counter


def bump_version(conn: sqlite3.Connection, tenant: str, now_ms: int) -> int:
    """Inside a write transaction that changes the tenant's standings: the version it serves becomes
    ``max(previous + 1, now_ms)`` (later than every one served before, whatever the clock did)."""
    version = max(served_version(conn, tenant) + 1, now_ms)
    conn.execute("INSERT INTO case_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                 "value = excluded.value", (_SERVED_KEY + tenant, str(version)))
    return version


def feed_value(conn: sqlite3.Connection, tenant: str, key: str) -> str | None:
    row = conn.execute("SELECT standing FROM feed_standing WHERE tenant = ? AND originator = ?",
                       (tenant, key)).fetchone()
    return None if row is None else str(row[0])


def write_enforced(conn: sqlite3.Connection, tenant: str, key: str, own: str | None, case_id: str) -> bool:
    """Set the row the gate reads for ``key`` to the ``strictest`` of ``own`` (case ``case_id``'s
    standing) and the feed's; True when the case's own standing is the one enforced. A row another
    case holds is left alone (a closed case's late step never clears the open one's)."""
    feed = feed_value(conn, tenant, key)
    value = strictest(own, feed)
    if value is None:
        conn.execute("DELETE FROM originator_standing WHERE tenant = ? AND originator = ? AND case_id IN (?, ?)",
                     (tenant, key, case_id, FEED_CASE_ID))
        return False
    owner = case_id if own == value else FEED_CASE_ID
    conn.execute("INSERT INTO originator_standing (tenant, originator, standing, case_id) VALUES (?1, ?2, ?3, ?4) "
                 "ON CONFLICT (tenant, originator) DO UPDATE SET standing = excluded.standing, "
                 "case_id = excluded.case_id WHERE originator_standing.case_id IN (?5, ?6)",
                 (tenant, key, value, owner, case_id, FEED_CASE_ID))
    return own is not None and own == value


def apply_standings(conn: sqlite3.Connection, tenant: str, feed: FeedStandings,
                    accept_older: bool = False) -> StandingsApplied:
    """Make the feed's standings of ``tenant`` what ``feed`` says, and what the gate reads follow, in one
    transaction (nothing of an older version, unless ``accept_older``)."""
    with write_transaction(conn) as tx:
        row = tx.execute("SELECT value FROM case_meta WHERE key = ?", (_VERSION_KEY + tenant,)).fetchone()
        applied = int(row[0]) if row else -1
        if feed.version < applied and not accept_older:
            return StandingsApplied(tenant, feed.version, refused=f"version {feed.version} is older than the "
                                                                  f"applied {applied}")
        before = {str(k): str(v) for k, v in tx.execute(
            "SELECT originator, standing FROM feed_standing WHERE tenant = ?", (tenant,))}
        removed = [key for key in before if key not in feed.standings]
        added = [key for key in feed.standings if key not in before]
        changed = [key for key, value in feed.standings.items() if key in before and before[key] != value]
        tx.executemany("DELETE FROM feed_standing WHERE tenant = ? AND originator = ?", [(tenant, k) for k in removed])
        tx.executemany("INSERT INTO feed_standing (tenant, originator, standing) VALUES (?, ?, ?) ON CONFLICT "
                       "(tenant, originator) DO UPDATE SET standing = excluded.standing",
                       [(tenant, key, feed.standings[key]) for key in (*added, *changed)])
        kept = sum(_enforce(tx, tenant, key) for key in (*removed, *added, *changed))
        if removed or added or changed:  # what this store's own feed serves of the tenant changed too
            bump_version(tx, tenant, 0)
        tx.execute("INSERT INTO case_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                   "value = excluded.value", (_VERSION_KEY + tenant, str(feed.version)))
    return StandingsApplied(tenant, feed.version, len(added), len(changed), len(removed), kept)


def _enforce(tx: sqlite3.Connection, tenant: str, key: str) -> bool:
    """``write_enforced`` for ``key`` with its open case's standing (none: the feed's alone)."""
    row = tx.execute("SELECT case_id, record FROM cases WHERE tenant = ? AND originator = ? AND state != 'closed'",
                     (tenant, key)).fetchone()
    if row is None:
        return write_enforced(tx, tenant, key, None, FEED_CASE_ID)
    return write_enforced(tx, tenant, key, encode_standing(Case.from_json(row[1])), str(row[0]))
