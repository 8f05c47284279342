"""List stores: the embedded SQLite default and Redis, behind one protocol."""

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
