"""Every table of the SQLite file, and the one statement a lookup runs.

The list store (``lists``) creates all of them, the consent ledger (``ledger``) and the case store
(``cases``) their own; both
scripts are idempotent, so whichever connection comes first creates what is missing. The consent
tables sit in the same file so that one lookup reads lists and consent from one snapshot.

The consent history is append-only by trigger: no UPDATE ever, and DELETE only of records older
than the tenant's ``purge_before`` mark, which only the purge command moves (after checking the
retention).
"""

from __future__ import annotations

from functools import lru_cache

LISTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (
    name TEXT PRIMARY KEY, version INTEGER NOT NULL, count INTEGER NOT NULL, loaded_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, list_name TEXT NOT NULL, state TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS numbers (
    version INTEGER NOT NULL, number INTEGER NOT NULL, PRIMARY KEY (version, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prefix_rules (
    list_name TEXT NOT NULL, prefix TEXT NOT NULL, created_at TEXT NOT NULL,
    PRIMARY KEY (list_name, prefix)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
-- one record per decision: a record replayed from the audit spool after a crash is not added twice
CREATE UNIQUE INDEX IF NOT EXISTS audit_decision_id ON audit (json_extract(record, '$.decision_id'));
CREATE TABLE IF NOT EXISTS sync_state (list_name TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
-- the console's searches (store.audit_query, store.sqlite.audit_search): the searchable fields of
-- each record as plain columns (written with it, no JSON parsed); an index holds its rows in write order
CREATE TABLE IF NOT EXISTS audit_keys (
    seq INTEGER PRIMARY KEY, tenant TEXT NOT NULL, at TEXT NOT NULL, callee TEXT NOT NULL, account TEXT NOT NULL,
    caller_id TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_keys_callee ON audit_keys (callee);
CREATE INDEX IF NOT EXISTS audit_keys_caller_id ON audit_keys (caller_id);
CREATE INDEX IF NOT EXISTS audit_keys_account ON audit_keys (account);
CREATE INDEX IF NOT EXISTS audit_keys_reason ON audit_keys (reason);
CREATE INDEX IF NOT EXISTS audit_keys_at ON audit_keys (at);
-- decisions per minute for the console's charts, counted as records are written
CREATE TABLE IF NOT EXISTS audit_minutes (
    minute TEXT NOT NULL, tenant TEXT NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (minute, tenant, verdict, reason)
) WITHOUT ROWID;
"""


CONSENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS consent_log (
    tenant TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, recorded_at TEXT NOT NULL,
    callee INTEGER, event TEXT NOT NULL, PRIMARY KEY (tenant, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS consent_log_callee ON consent_log (tenant, callee);
CREATE TABLE IF NOT EXISTS consent_current (
    tenant TEXT NOT NULL, callee INTEGER NOT NULL, entity TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (tenant, callee, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriber_prefs (
    tenant TEXT NOT NULL, callee INTEGER NOT NULL, item TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (tenant, callee, item)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consent_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registry_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, event TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS consent_log_append_only BEFORE UPDATE ON consent_log
BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS consent_log_retention BEFORE DELETE ON consent_log
WHEN old.recorded_at >= coalesce((SELECT value FROM consent_meta WHERE key = 'purge_before:' || old.tenant), '')
BEGIN SELECT RAISE(ABORT, 'consent records inside the retention period cannot be deleted'); END;
"""

CASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS case_log (
    tenant TEXT NOT NULL, case_id TEXT NOT NULL, seq INTEGER NOT NULL, idempotency_key TEXT NOT NULL,
    at TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (tenant, case_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS case_log_idempotency ON case_log (tenant, idempotency_key);
CREATE TABLE IF NOT EXISTS cases (
    tenant TEXT NOT NULL, case_id TEXT NOT NULL, originator TEXT NOT NULL, state TEXT NOT NULL,
    updated_at TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (tenant, case_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS cases_open ON cases (tenant, originator) WHERE state != 'closed';
CREATE TABLE IF NOT EXISTS originator_standing (
    tenant TEXT NOT NULL, originator TEXT NOT NULL, standing TEXT NOT NULL, case_id TEXT NOT NULL,
    PRIMARY KEY (tenant, originator)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed_standing (
    tenant TEXT NOT NULL, originator TEXT NOT NULL, standing TEXT NOT NULL, PRIMARY KEY (tenant, originator)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS complaints (
    tenant TEXT NOT NULL, id TEXT NOT NULL, received_at TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS case_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS case_log_append_only BEFORE UPDATE ON case_log
BEGIN SELECT RAISE(ABORT, 'case_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS case_log_retention BEFORE DELETE ON case_log
WHEN old.at >= coalesce((SELECT value FROM case_meta WHERE key = 'purge_before:' || old.tenant), '')
BEGIN SELECT RAISE(ABORT, 'case records inside the retention period cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS complaints_kept BEFORE DELETE ON complaints
BEGIN SELECT RAISE(ABORT, 'complaints cannot be deleted'); END;
"""

# The enforcement part of the lookup: ?3 tenant, the originator keys (``kind:value``: account, trunk,
# caller ID, entity; "" when absent) at ?{first}..?{first+3}; rows ('~standing', NULL, key, standing).
STANDING_KEYS = 4


def standing_sql(first: int) -> str:
    marks = ",".join(f"?{i}" for i in range(first, first + STANDING_KEYS))
    return f"""
UNION ALL
SELECT '~standing', NULL, originator, standing FROM originator_standing
WHERE tenant = ?3 AND originator IN ({marks})"""  # noqa: S608 -- only numbered '?' marks are formatted in


# The consent part of the list store's one-statement lookup: ?1 number, ?3 tenant, ?4 entity.
CONSENT_FACTS_SQL = """
UNION ALL
SELECT '~consent', NULL, NULL, state FROM consent_current WHERE tenant = ?3 AND callee = ?1 AND entity = ?4
UNION ALL
SELECT '~pref', NULL, item, value FROM subscriber_prefs
WHERE tenant = ?3 AND callee = ?1 AND item IN ('declined', 'b:' || ?4)"""


@lru_cache(maxsize=16)
def facts_sql(prefix_count: int) -> str:
    """Pointers and membership for both lists, the longest prefix rule, the consent ledger's
    current state (``CONSENT_FACTS_SQL``) and the originator's standing (``standing_sql``), in one
    statement."""
    marks = ",".join(f"?{i}" for i in range(5, 5 + prefix_count))
    return f"""
SELECT l.name, l.version,
       EXISTS (SELECT 1 FROM numbers n WHERE n.version = l.version AND n.number = ?1), NULL
FROM lists l WHERE l.name IN ('national', ?2)
UNION ALL
SELECT * FROM (
    SELECT list_name, NULL, NULL, prefix FROM prefix_rules
    WHERE list_name IN ('national', ?2) AND prefix IN ({marks})
    ORDER BY length(prefix) DESC, list_name = 'national' LIMIT 1
)""" + CONSENT_FACTS_SQL + standing_sql(5 + prefix_count)  # noqa: S608 -- only numbered '?' marks are formatted in
