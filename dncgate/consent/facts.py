"""The consent part of ``Facts``, from what a store's one lookup read (shared by both backends).

The rules of reading the ledger's current state; a backend turns ``NotAConsentState`` into its
own ``StoreCorrupt`` (this room knows no store)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from dncgate.errors import ConsentError
from dncgate.model import ConsentFact, ConsentStatus


class NotAConsentState(ConsentError, ValueError):
    """A stored current-state record that does not parse; the message names where it was read."""


def consent_fact(raw: bytes | str | None, where: str) -> ConsentFact | None:
    """A current-state record -> ``ConsentFact`` (only the fields a decision needs are parsed)."""
    if raw is None:
        return None
    try:
        data: dict[str, Any] = json.loads(raw)
        return ConsentFact(
            ConsentStatus(data["status"]),
            frozenset(data["categories"]),
            str(data["record_id"]),
            _time(data.get("valid_from")),
            _time(data.get("expires_at")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise NotAConsentState(f"{where}: not a consent state ({exc})") from exc


def declined(raw: bytes | str | None) -> frozenset[str]:
    if not raw:
        return frozenset()
    text = raw.decode() if isinstance(raw, bytes) else raw
    return frozenset(text.split(","))


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
