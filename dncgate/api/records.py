"""Request fields shared by the consent and subscriber handlers: evidence, categories, times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dncgate.api.errors import ApiError, field
from dncgate.consent.model import ConsentState, Evidence, LedgerError, LedgerEvent, Preferences, iso, parse_time


def evidence_of(data: dict[str, Any]) -> Evidence:
    raw = field(data, "evidence", dict)
    try:
        return Evidence.from_dict(raw)
    except LedgerError as exc:
        raise ApiError(422, "invalid_field", str(exc)) from None


def categories_of(data: dict[str, Any]) -> tuple[str, ...]:
    values = field(data, "categories", list, required=False, default=[])
    if not all(isinstance(v, str) for v in values):
        raise ApiError(422, "invalid_field", "categories: expected an array of strings")
    return tuple(dict.fromkeys(values))


def time_of(data: dict[str, Any], name: str) -> datetime | None:
    try:
        return parse_time(data.get(name), name)
    except LedgerError as exc:
        raise ApiError(422, "invalid_field", str(exc)) from None


def entity_of(data: dict[str, Any]) -> str:
    value: str = field(data, "entity", str)
    return value


def record_json(event: LedgerEvent) -> dict[str, Any]:
    return event.as_dict()


def consent_json(entity: str, state: ConsentState) -> dict[str, Any]:
    return {
        "entity": entity, "status": state.status.value, "categories": list(state.categories),
        "record_id": state.record_id, "valid_from": iso(state.valid_from), "expires_at": iso(state.expires_at),
        "evidence": state.evidence.as_dict() if state.evidence else None, "updated_at": iso(state.updated_at),
    }


def preferences_json(number: str, prefs: Preferences) -> dict[str, Any]:
    return {
        "number": number, "declines_all_marketing": prefs.declines_all,
        "declined_categories": sorted(c for c in prefs.declined if c != "*"),
        "blocked_entities": sorted(prefs.blocks), "record_id": prefs.record_id,
    }
