"""The consent ledger's records: evidence, events (append-only, hash-chained), and current state.

Pure: no I/O. A backend appends an event and, in the same transaction, folds it into the current
state the gate reads in its one lookup: per (tenant, entity, callee) a :class:`ConsentState`, per
(tenant, callee) the subscriber's :class:`Preferences`.

Every event carries ``seq`` (per tenant, from 1), ``prev_hash`` and ``hash`` =
sha256(prev_hash + canonical JSON of the event without ``hash``): an export can be checked for
completeness by recomputing the chain from the anchor (the last record purged, or the genesis).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from dncgate.errors import LedgerError as LedgerError  # re-exported: callers import it from here
from dncgate.model import DECLINE_ALL, ConsentFact, ConsentStatus

GENESIS = "0" * 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_TEXT = 4000


class Channel(StrEnum):
    IVR = "ivr"
    WEB = "web"
    SMS = "sms"
    PAPER = "paper"
    API = "api"


class Action(StrEnum):
    GRANT = "grant"  # consent of the callee to calls from an entity, for a category scope
    REVOKE = "revoke"  # withdrawal of that consent (all of it, or some categories)
    DECLINE = "decline"  # subscriber preference: the declined categories ("*": all marketing)
    WITHDRAW = "withdraw"  # subscriber withdraws the registration: no preference any more
    BLOCK = "block"  # a specific block against one entity (stops service calls too)
    UNBLOCK = "unblock"
    PURGE = "purge"  # records older than the retention period were deleted (by an explicit command)


CONSENT_ACTIONS = frozenset({Action.GRANT, Action.REVOKE})
PREFERENCE_ACTIONS = frozenset({Action.DECLINE, Action.WITHDRAW, Action.BLOCK, Action.UNBLOCK})


def check_name(what: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise LedgerError(f"{what} {value!r}: 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return value


def utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise LedgerError(f"time {value.isoformat()} has no UTC offset")
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(value: Any, what: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise LedgerError(f"{what}: expected an ISO 8601 time with offset, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise LedgerError(f"{what}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise LedgerError(f"{what}: {value!r} has no UTC offset (add Z or +08:00)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 and the like have no UTC time
        raise LedgerError(f"{what}: {value!r} is out of range") from None


@dataclass(frozen=True, slots=True)
class Evidence:
    """How a consent or preference was captured."""

    channel: Channel
    captured_at: datetime
    source: str  # who it came from: the caller ID, an IP address, a form id, a signed paper's reference
    shown: str  # the text shown or read to the callee, or the id of the template
    captured_by: str  # the agent, system or user that captured it
    document_sha256: str = ""  # of a recording or scanned document, if any

    def __post_init__(self) -> None:
        for name in ("source", "shown", "captured_by"):
            value = getattr(self, name)
            if not value.strip() or len(value) > MAX_TEXT:
                raise LedgerError(f"evidence.{name}: required, at most {MAX_TEXT} characters")
        if self.document_sha256 and not _SHA256.fullmatch(self.document_sha256):
            raise LedgerError("evidence.document_sha256: 64 lowercase hex digits")

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel.value, "captured_at": iso(self.captured_at), "source": self.source,
            "shown": self.shown, "captured_by": self.captured_by, "document_sha256": self.document_sha256,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Evidence:
        if not isinstance(data, dict):
            raise LedgerError("evidence: expected an object")
        try:
            channel = Channel(str(data.get("channel")))
        except ValueError:
            raise LedgerError(f"evidence.channel: one of {', '.join(c.value for c in Channel)}") from None
        captured_at = parse_time(data.get("captured_at"), "evidence.captured_at")
        if captured_at is None:
            raise LedgerError("evidence.captured_at: required")
        fields = {}
        for name in ("source", "shown", "captured_by", "document_sha256"):
            value = data.get(name, "")
            if not isinstance(value, str):
                raise LedgerError(f"evidence.{name}: expected a string")
            fields[name] = value
        return cls(channel=channel, captured_at=captured_at, **fields)


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One append-only ledger record. ``seq``, ``recorded_at`` and the hashes are set on append."""

    tenant: str
    action: Action
    callee: str = ""  # E.164 with '+'; empty only for purge records
    entity: str = ""
    categories: tuple[str, ...] = ()  # scope; empty: every marketing category
    valid_from: datetime | None = None
    expires_at: datetime | None = None
    evidence: Evidence | None = None
    detail: str = ""  # purge: what was deleted
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seq: int = 0
    recorded_at: datetime | None = None
    prev_hash: str = ""
    hash: str = ""

    @property
    def digits(self) -> int:
        return int(self.callee[1:])

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id, "seq": self.seq, "tenant": self.tenant, "action": self.action.value,
            "callee": self.callee, "entity": self.entity, "categories": list(self.categories),
            "valid_from": iso(self.valid_from), "expires_at": iso(self.expires_at),
            "evidence": self.evidence.as_dict() if self.evidence else None, "detail": self.detail,
            "recorded_at": iso(self.recorded_at), "prev_hash": self.prev_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        return self.body() | {"hash": self.hash}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    def sealed(self, seq: int, prev_hash: str, recorded_at: datetime) -> LedgerEvent:
        """This event as record ``seq`` after ``prev_hash``: with its own hash."""
        event = replace(self, seq=seq, prev_hash=prev_hash, recorded_at=recorded_at, hash="")
        return replace(event, hash=chain_hash(prev_hash, event.body()))

    @classmethod
    def from_json(cls, raw: str | bytes) -> LedgerEvent:
        data = json.loads(raw)
        evidence = data.get("evidence")
        return cls(
            tenant=data["tenant"], action=Action(data["action"]), callee=data["callee"], entity=data["entity"],
            categories=tuple(data["categories"]), valid_from=parse_time(data["valid_from"], "valid_from"),
            expires_at=parse_time(data["expires_at"], "expires_at"),
            evidence=None if evidence is None else Evidence.from_dict(evidence), detail=data.get("detail", ""),
            id=data["id"], seq=int(data["seq"]), recorded_at=parse_time(data["recorded_at"], "recorded_at"),
            prev_hash=data["prev_hash"], hash=data["hash"],
        )


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsentState:
    """The current consent of one callee towards one entity; what ``facts()`` returns."""

    status: ConsentStatus
    categories: tuple[str, ...]  # empty: every marketing category
    record_id: str
    valid_from: datetime | None
    expires_at: datetime | None
    evidence: Evidence | None  # of the record that made it so (survives a purge of the history)
    updated_at: datetime | None

    def fact(self) -> ConsentFact:
        return ConsentFact(self.status, frozenset(self.categories), self.record_id, self.valid_from, self.expires_at)

    def to_json(self) -> str:
        return json.dumps({
            "status": self.status.value, "categories": list(self.categories), "record_id": self.record_id,
            "valid_from": iso(self.valid_from), "expires_at": iso(self.expires_at),
            "evidence": self.evidence.as_dict() if self.evidence else None, "updated_at": iso(self.updated_at),
        }, separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ConsentState:
        data = json.loads(raw)
        evidence = data.get("evidence")
        return cls(
            ConsentStatus(data["status"]), tuple(data["categories"]), data["record_id"],
            parse_time(data["valid_from"], "valid_from"), parse_time(data["expires_at"], "expires_at"),
            None if evidence is None else Evidence.from_dict(evidence), parse_time(data.get("updated_at"), "updated"),
        )


def fold_consent(state: ConsentState | None, event: LedgerEvent, taxonomy: tuple[str, ...]) -> ConsentState:
    """The consent after ``event`` (a grant or a revoke)."""
    at = event.recorded_at
    if event.action is Action.GRANT:
        categories = event.categories
        if state is not None and state.status is ConsentStatus.GRANTED and state.categories and categories:
            categories = tuple(sorted(set(state.categories) | set(categories)))
        elif state is not None and state.status is ConsentStatus.GRANTED and not state.categories:
            categories = ()
        return ConsentState(ConsentStatus.GRANTED, categories, event.id, event.valid_from, event.expires_at,
                            event.evidence, at)
    if not event.categories or state is None or state.status is ConsentStatus.REVOKED:
        return ConsentState(ConsentStatus.REVOKED, (), event.id, None, None, event.evidence, at)
    held = state.categories or taxonomy
    left = tuple(c for c in held if c not in event.categories)
    if not left:
        return ConsentState(ConsentStatus.REVOKED, (), event.id, None, None, event.evidence, at)
    return replace(state, categories=left, record_id=event.id, evidence=event.evidence, updated_at=at)


@dataclass(frozen=True, slots=True)
class Preferences:
    """A subscriber's registration: the declined categories and the entities blocked by name."""

    declined: frozenset[str] = frozenset()
    blocks: frozenset[str] = frozenset()
    record_id: str = ""

    @property
    def declines_all(self) -> bool:
        return DECLINE_ALL in self.declined


def fold_preferences(prefs: Preferences, event: LedgerEvent) -> Preferences:
    if event.action is Action.DECLINE:
        return replace(prefs, declined=frozenset(event.categories or (DECLINE_ALL,)), record_id=event.id)
    if event.action is Action.WITHDRAW:
        return replace(prefs, declined=frozenset(), record_id=event.id)
    if event.action is Action.BLOCK:
        return replace(prefs, blocks=prefs.blocks | {event.entity}, record_id=event.id)
    if event.action is Action.UNBLOCK:
        return replace(prefs, blocks=prefs.blocks - {event.entity}, record_id=event.id)
    return prefs


def validate(event: LedgerEvent, taxonomy: tuple[str, ...]) -> None:
    """Raise ``LedgerError`` for an event that must not be recorded."""
    check_name("tenant", event.tenant)
    if event.action is Action.PURGE:
        return
    if not (event.callee.startswith("+") and event.callee[1:].isdigit() and 6 <= len(event.callee) <= 16):
        raise LedgerError(f"callee {event.callee!r}: expected an E.164 number like +8613800138000")
    if event.evidence is None:
        raise LedgerError("evidence: required for every consent and preference record")
    if event.action in CONSENT_ACTIONS or event.action in {Action.BLOCK, Action.UNBLOCK}:
        check_name("entity", event.entity)
    allowed = set(taxonomy) | ({DECLINE_ALL} if event.action is Action.DECLINE else set())
    unknown = sorted(set(event.categories) - allowed)
    if unknown:
        raise LedgerError(f"categories: unknown {', '.join(unknown)} (known: {', '.join(taxonomy)})")
    if event.valid_from and event.expires_at and event.expires_at <= event.valid_from:
        raise LedgerError("expires_at: must be after valid_from")
