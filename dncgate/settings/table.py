"""The base of every TOML table's Struct (its own module, so that a group of tables in a module of
its own, like ``settings.enforcement``, can be used by ``schema`` without an import cycle)."""

from __future__ import annotations

import msgspec


class Table(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One TOML table."""
