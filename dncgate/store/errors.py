"""The store's exception tree. Doors catch ``StoreError``; nothing else escapes a store."""

from __future__ import annotations

from dncgate.errors import StoreError

__all__ = ["StoreCorrupt", "StoreError", "StoreMissing", "StoreUnavailable", "UnknownList"]


class StoreUnavailable(StoreError):
    """The store could not be reached or did not answer in time; the check cannot be completed."""


class StoreMissing(StoreError):
    """The SQLite file a program that only reads was given does not exist: it is never created
    there (an empty store would answer every check "not listed"); ``dncgate init`` or a list load
    creates it."""


class StoreCorrupt(StoreError):
    """The store answered, but with data that does not make sense (a missing version, a bad key)."""


class UnknownList(StoreError):
    """A list name that is neither ``national`` nor ``tenant:NAME``."""
