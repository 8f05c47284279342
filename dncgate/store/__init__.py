"""Stores: the embedded SQLite default and Redis, behind one protocol.

Each backend owns its persistence: ``store.sqlite`` and ``store.redis`` hold the list store, the
consent ledger (``dncgate.consent.ledger.Ledger``), the audit and every table, key and encoding
they write. ``distinct`` is the sorted, distinct input every load takes."""

from dncgate.store.errors import StoreError, StoreUnavailable, UnknownList
from dncgate.store.protocol import ListStats, ListStore, LoadResult, list_key, parse_list_name

__all__ = [
    "ListStats",
    "ListStore",
    "LoadResult",
    "StoreError",
    "StoreUnavailable",
    "UnknownList",
    "list_key",
    "parse_list_name",
]
