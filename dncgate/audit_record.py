"""One audit record per decision: what was asked, what was decided, why, and how fast."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from dncgate import jsontext
from dncgate.model import CallAttempt, Decision
from dncgate.numbers import ShortNumber, Subscriber

# Decision ids are 128 random bits as 32 hex digits, like uuid4().hex, drawn from a generator seeded
# from os.urandom once per process: uuid4() makes a getrandom() system call on every call, which
# costs ~20 us on a busy switch host. Ids name records; they are not secrets or credentials.
_IDS = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))  # a child must not repeat the parent's ids


def new_decision_id() -> str:
    return f"{_IDS.getrandbits(128):032x}"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    decision_id: str
    at: str  # ISO 8601, UTC
    tenant: str
    door: str  # agi | esl | cli | api | sip-message | smpp
    account: str
    trunk: str
    caller_id: str
    dialled: str  # raw, as the switch handed it over
    callee: str  # E.164, short-number digits, or "" when invalid
    purpose: str
    category: str | None
    verdict: str
    outcome: str
    reason: str
    list_name: str | None
    list_version: str | None
    mode: str
    sip_code: int | None
    latency_us: int
    detail: str = ""
    entity: str = ""  # the business behind the call or message (a message's sender port's entity)
    # to_json()'s text, made once: the spool and the store's batch both write it (not a field of the record)
    _json: str | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        attempt: CallAttempt,
        decision: Decision,
        *,
        decision_id: str,
        door: str,
        dialled: str,
        latency_us: int,
    ) -> AuditRecord:
        callee = attempt.callee
        if isinstance(callee, Subscriber):
            callee_text = callee.e164
        elif isinstance(callee, ShortNumber):
            callee_text = callee.digits
        else:
            callee_text = ""
        return cls(
            decision_id=decision_id,
            at=_iso(attempt.at),
            tenant=attempt.tenant.name,
            door=door,
            account=attempt.originator.account,
            trunk=attempt.originator.trunk,
            caller_id=attempt.originator.caller_id,
            dialled=dialled,
            callee=callee_text,
            purpose=attempt.purpose.value,
            category=attempt.category,
            verdict=decision.verdict.value,
            outcome=decision.outcome.value,
            reason=decision.reason.value,
            list_name=decision.list_name,
            list_version=decision.list_version,
            mode=decision.mode.value,
            sip_code=decision.sip_code,
            latency_us=latency_us,
            detail=decision.detail,
            entity=attempt.originator.entity,
        )

    def as_dict(self) -> dict[str, Any]:
        # Every field is a str, int or None: no deep copy needed (dataclasses.asdict costs ~140 us).
        return dict(zip(_FIELDS, _values(self), strict=True))

    def to_json(self) -> str:
        text = self._json
        if text is None:
            text = jsontext.compact(self.as_dict())
            object.__setattr__(self, "_json", text)  # a cache of the frozen record's own text
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditRecord:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("audit record is not a JSON object")
        return cls(**{k: v for k, v in data.items() if k in _KNOWN})


_FIELDS = tuple(f.name for f in fields(AuditRecord) if f.init)
RECORD_KEYS = _FIELDS  # a record's keys in its JSON, in order (its fields but the _json cache)
_KNOWN = frozenset(_FIELDS)
_values = attrgetter(*_FIELDS)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")
