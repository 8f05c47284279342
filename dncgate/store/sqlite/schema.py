"""SQLite tables of the consent ledger (created with the list store's schema, read by its ``facts()``).

The history is append-only by trigger: no UPDATE ever, and DELETE only of records older than the
tenant's ``purge_before`` mark, which only the purge command moves (after checking the retention).
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

# The consent part of the list store's one-statement lookup: ?1 number, ?3 tenant, ?4 entity.
FACTS_SQL = """
UNION ALL
SELECT '~consent', NULL, NULL, state FROM consent_current WHERE tenant = ?3 AND callee = ?1 AND entity = ?4
UNION ALL
SELECT '~pref', NULL, item, value FROM subscriber_prefs
WHERE tenant = ?3 AND callee = ?1 AND item IN ('declined', 'b:' || ?4)"""
