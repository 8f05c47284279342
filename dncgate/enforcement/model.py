"""An enforcement case and its transitions: append-only, hash-chained, pure (no I/O).

A case is about one originator (``OriginatorKey``: tenant, kind, value) and moves through
:class:`CaseState`. Every step is a :class:`Transition`: who, when, why, the evidence, the state
before and after, and an idempotency key (an alert's id, an API request's key) so that a step
replayed after a restart is recognised and not applied twice. Each transition carries ``seq`` (per
case, from 1), ``prev_hash`` and ``hash`` = sha256(prev_hash + canonical JSON of the transition
without ``hash``), like the consent ledger: a case file proves itself complete and unaltered.

The :class:`Case` is the fold of its transitions (``dncgate.enforcement.machine.apply``); the
stores keep it beside the log, in the same write, for listing and for the gate's standing set.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
from dncgate.errors import CaseError
from dncgate.model import Restriction

GENESIS = "0" * 64
MAX_TEXT = 4000


class CaseState(StrEnum):
    OPEN = "open"
    WARNED = "warned"
    NOTICED = "noticed"
    RESTRICTED = "restricted"
    SUSPENDED = "suspended"
    APPEALED = "appealed"
    REINSTATED = "reinstated"
    UPHELD = "upheld"
    CLOSED = "closed"


class CaseAction(StrEnum):
    OPEN = "open"  # the first alert about an originator with no case open
    ALERT = "alert"  # a further alert: evidence added, state unchanged
    WARN = "warn"
    NOTICE = "notice"  # a notice is sent (webhook / e-mail); the notice period starts
    DELIVERY = "delivery"  # what became of a notice's delivery (status code, attempts)
    RESTRICT = "restrict"
    SCHEDULE_SUSPENSION = "schedule_suspension"  # asked before the notice period ran: takes effect after it
    SUSPEND = "suspend"
    APPEAL = "appeal"
    REINSTATE = "reinstate"  # the appeal is granted: standing lifted
    UPHOLD = "uphold"  # the appeal is refused: the measure stays
    LIFT = "lift"  # an operator lifts a restriction or suspension without an appeal
    CLOSE = "close"
    NOTE = "note"  # an operator's note, evidence only


class Standing(StrEnum):
    """What the gate sees of an originator."""

    CLEAR = "clear"
    RESTRICTED = "restricted"
    SUSPENDED = "suspended"


def originator_key(tenant: str, kind: str, value: str) -> OriginatorKey:
    """An originator key from its parts, checked. Raises ``CaseError``."""
    try:
        parsed = OriginatorKind(kind)
    except ValueError:
        raise CaseError(f"originator kind {kind!r}: one of {', '.join(k.value for k in OriginatorKind)}") from None
    if not value or len(value) > 128 or any(c.isspace() or not c.isprintable() for c in value):
        raise CaseError(f"originator {value[:40]!r}: 1-128 printable characters, no spaces")
    return OriginatorKey(tenant, parsed, value)


def standing_key(originator: OriginatorKey) -> str:
    """How the stores and the gate name an originator inside its tenant: ``account:acme-out``."""
    return f"{originator.kind.value}:{originator.value}"


def canonical_json(data: Mapping[str, Any]) -> str:
    """A record's stored form: compact, keys sorted (the hash chain hashes this text)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class StoredRecord:
    """A record the case store keeps as JSON: ``as_dict()`` its object, ``to_json()`` the stored text."""

    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        return canonical_json(self.as_dict())


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(value: Any, what: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise CaseError(f"{what}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise CaseError(f"{what}: {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def checked_text(what: str, value: str, *, required: bool = True) -> str:
    if (required and not value.strip()) or len(value) > MAX_TEXT:
        raise CaseError(f"{what}: {'required, ' if required else ''}at most {MAX_TEXT} characters")
    return value


@dataclass(frozen=True, slots=True)
class Transition(StoredRecord):
    """One step of a case, sealed (``seq``, ``prev_hash``, ``hash``) by ``sealed()``."""

    tenant: str
    case_id: str
    action: CaseAction
    actor: str  # an API key's name, ``cli:<user>``, ``analytics`` or ``scheduler``
    reason: str
    state_from: CaseState | None
    state_to: CaseState
    at: datetime
    idempotency_key: str
    originator: str  # ``kind:value``
    evidence: dict[str, Any] = field(default_factory=dict)
    urgent: bool = False
    effective_at: datetime | None = None  # a scheduled suspension's time
    restriction: Restriction | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """Everything but ``hash``, in JSON types: what the hash covers."""
        return {
            "id": self.id, "tenant": self.tenant, "case_id": self.case_id, "seq": self.seq,
            "action": self.action.value, "actor": self.actor, "reason": self.reason,
            "state_from": self.state_from.value if self.state_from else None, "state_to": self.state_to.value,
            "at": iso(self.at), "idempotency_key": self.idempotency_key, "originator": self.originator,
            "evidence": self.evidence, "urgent": self.urgent, "effective_at": iso(self.effective_at),
            "restriction": None if self.restriction is None else
            {"per_minute": self.restriction.per_minute, "concurrent": self.restriction.concurrent},
            "prev_hash": self.prev_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    def sealed(self, seq: int, prev_hash: str) -> Transition:
        unsealed = replace(self, seq=seq, prev_hash=prev_hash, hash="")
        canonical = canonical_json(unsealed.body())
        return replace(unsealed, hash=hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest())

    def verifies(self) -> bool:
        return self.sealed(self.seq, self.prev_hash).hash == self.hash

    @classmethod
    def from_json(cls, raw: str | bytes) -> Transition:
        try:
            data = json.loads(raw)
            restriction = data.get("restriction")
            return cls(
                tenant=data["tenant"], case_id=data["case_id"], action=CaseAction(data["action"]),
                actor=data["actor"], reason=data["reason"],
                state_from=CaseState(data["state_from"]) if data["state_from"] else None,
                state_to=CaseState(data["state_to"]), at=parse_iso(data["at"], "at") or datetime.now(UTC),
                idempotency_key=data["idempotency_key"], originator=data["originator"],
                evidence=dict(data["evidence"]), urgent=bool(data["urgent"]),
                effective_at=parse_iso(data.get("effective_at"), "effective_at"),
                restriction=None if restriction is None else
                Restriction(int(restriction["per_minute"]), int(restriction["concurrent"]), data["originator"]),
                id=data["id"], seq=int(data["seq"]), prev_hash=data["prev_hash"], hash=data["hash"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CaseError(f"not a case transition: {exc}") from None


@dataclass(frozen=True, slots=True)
class Case(StoredRecord):
    """A case's current state: the fold of its transitions."""

    tenant: str
    case_id: str
    originator: OriginatorKey
    state: CaseState
    standing: Standing
    opened_at: datetime
    updated_at: datetime
    seq: int
    head_hash: str
    restriction: Restriction | None = None
    noticed_at: datetime | None = None  # the first notice: the notice period runs from here
    suspend_at: datetime | None = None  # a scheduled suspension
    before_appeal: CaseState | None = None
    alerts: int = 0

    @property
    def key(self) -> str:
        return standing_key(self.originator)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant, "case_id": self.case_id, "originator_kind": self.originator.kind.value,
            "originator": self.originator.value, "state": self.state.value, "standing": self.standing.value,
            "opened_at": iso(self.opened_at), "updated_at": iso(self.updated_at), "seq": self.seq,
            "head_hash": self.head_hash,
            "restriction": None if self.restriction is None else
            {"per_minute": self.restriction.per_minute, "concurrent": self.restriction.concurrent},
            "noticed_at": iso(self.noticed_at), "suspend_at": iso(self.suspend_at),
            "before_appeal": self.before_appeal.value if self.before_appeal else None, "alerts": self.alerts,
        }

    @classmethod
    def from_json(cls, raw: str | bytes) -> Case:
        try:
            data = json.loads(raw)
            restriction = data.get("restriction")
            originator = originator_key(data["tenant"], data["originator_kind"], data["originator"])
            return cls(
                tenant=data["tenant"], case_id=data["case_id"], originator=originator,
                state=CaseState(data["state"]), standing=Standing(data["standing"]),
                opened_at=parse_iso(data["opened_at"], "opened_at") or datetime.now(UTC),
                updated_at=parse_iso(data["updated_at"], "updated_at") or datetime.now(UTC),
                seq=int(data["seq"]), head_hash=data["head_hash"],
                restriction=None if restriction is None else
                Restriction(int(restriction["per_minute"]), int(restriction["concurrent"]), standing_key(originator)),
                noticed_at=parse_iso(data.get("noticed_at"), "noticed_at"),
                suspend_at=parse_iso(data.get("suspend_at"), "suspend_at"),
                before_appeal=CaseState(data["before_appeal"]) if data.get("before_appeal") else None,
                alerts=int(data.get("alerts", 0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CaseError(f"not a case: {exc}") from None


def encode_standing(case: Case) -> str | None:
    """The standing-set value the stores keep for the gate (None: remove the originator)."""
    if case.standing is Standing.SUSPENDED:
        return "s"
    if case.standing is Standing.RESTRICTED:
        caps = case.restriction or Restriction()
        return f"r:{caps.per_minute}:{caps.concurrent}"
    return None


def decode_standing(raw: str | bytes | None, originator: str) -> tuple[bool, Restriction | None]:
    """(suspended, restriction) from a standing-set value. Raises ``CaseError`` on anything else
    (the stores turn it into ``StoreCorrupt``: the check fails, by the tenant's failure policy)."""
    if raw is None:
        return False, None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    if text == "s":
        return True, None
    parts = text.split(":")
    if len(parts) == 3 and parts[0] == "r" and parts[1].isdigit() and parts[2].isdigit():
        return False, Restriction(int(parts[1]), int(parts[2]), originator)
    raise CaseError(f"originator standing {text[:40]!r} of {originator}: not 's' or 'r:<per minute>:<concurrent>'")


def standing_of(keys: Sequence[str], found: Mapping[str, str | bytes | None]) -> tuple[bool, Restriction | None]:
    """(suspended, restriction) of a call whose originator has ``keys`` (in this order), from the
    standing values a store found for them: any suspension wins; else the first key's restriction."""
    restriction: Restriction | None = None
    for key in keys:
        suspended, restricted = decode_standing(found.get(key), key)
        if suspended:
            return True, None
        restriction = restriction or restricted
    return False, restriction


def originator_keys(account: str = "", trunk: str = "", caller_id: str = "", entity: str = "") -> tuple[str, ...]:
    """The standing keys of one call's originator (``account:X``, ...), the fields it has."""
    parts = ((OriginatorKind.ACCOUNT, account), (OriginatorKind.TRUNK, trunk),
             (OriginatorKind.CALLER_ID, caller_id), (OriginatorKind.ENTITY, entity))
    return tuple(f"{kind.value}:{value}" for kind, value in parts if value)
