"""The SQLite backend: the list store, the consent ledger and the audit in one file.

Everything that knows a table lives here: ``schema`` (every table and the one lookup statement),
``lists`` (the list store, its lookups and audit), ``ledger`` (the consent ledger, implementing
``dncgate.consent.ledger.Ledger``) and ``tx`` (the one write transaction).

Only the list store is re-exported: importing the ledger costs the consent model, which a
lookup-only process (classic AGI) does not need.
"""

from dncgate.store.sqlite.lists import SqliteListStore

__all__ = ["SqliteListStore"]
