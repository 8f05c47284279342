"""Call facts as data: what a gate sends the analysers when they are not in its own process.

``Signals`` hands its facts to a :class:`FactSink`: the :class:`~dncgate.early_warning.analyser.Analyser`
itself (``[early_warning] transport = "process"``) or a producer that sends them to Redis streams
(``"redis"``, ``store.redis.fact_stream``). There a fact is a short JSON array:

- ``["a", tenant, originator, at, callee, flags, caller ID, decision id]``: an attempt (flags: 1
  refused, 2 allowed, 4 service);
- ``["e", tenant, originator, at, answered 0/1, billed seconds, call id]``: an end;
- ``["c", tenant, caller ID, at]``: a complaint about a caller ID (sent to every partition: only the
  analyser that holds the originator the caller ID last stood for counts it).

:func:`partition_of` puts every fact of one originator in the same partition (a stable hash of the
tenant and the originator key, the same on every gate and every run).
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

from dncgate.early_warning.analyser import Analyser, Watch

REFUSED, ALLOWED, SERVICE = 1, 2, 4
Fact = list[object]


class FactSink(Protocol):
    """Where ``Signals`` puts the facts it keyed."""

    unkeyed: int

    def watch(self, tenant: str) -> Watch | None: ...

    def attempt(self, tenant: str, originator: str, at: float, callee: int, refused: bool, allowed: bool,
                service: bool, caller_id: str, decision_id: str) -> None: ...

    def ended(self, tenant: str, originator: str, at: float, answered: bool, billsec: float, call_id: str) -> None: ...


def partition_of(tenant: str, originator: str, partitions: int) -> int:
    """The partition of an originator: stable over processes and runs (not Python's salted ``hash``)."""
    digest = hashlib.blake2b(f"{tenant}\x1f{originator}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def attempt(tenant: str, originator: str, at: float, callee: int, refused: bool, allowed: bool, service: bool,
            caller_id: str, decision_id: str) -> Fact:
    flags = (REFUSED if refused else 0) | (ALLOWED if allowed else 0) | (SERVICE if service else 0)
    return ["a", tenant, originator, at, callee, flags, caller_id, decision_id]


def ended(tenant: str, originator: str, at: float, answered: bool, billsec: float, call_id: str) -> Fact:
    return ["e", tenant, originator, at, 1 if answered else 0, billsec, call_id]


def complaint(tenant: str, caller_id: str, at: float) -> Fact:
    return ["c", tenant, caller_id, at]


def encode(facts: list[Fact]) -> bytes:
    return json.dumps(facts, separators=(",", ":")).encode()


def decode(raw: bytes) -> list[Fact]:
    """The facts of one stream entry. Raises ``ValueError`` on anything that is not a list of facts."""
    facts = json.loads(raw)
    if not isinstance(facts, list) or not all(isinstance(f, list) and f and f[0] in ("a", "e", "c") for f in facts):
        raise ValueError("not a list of facts")
    return facts


def key_of(fact: Fact, analyser: Analyser) -> tuple[str, str] | None:
    """The (tenant, originator) a fact counts for; a complaint's is the originator its caller ID
    last stood for in ``analyser`` (None: none known)."""
    tenant = str(fact[1])
    if fact[0] != "c":
        return tenant, str(fact[2])
    originator = analyser.originator_of(tenant, str(fact[2]))
    return None if originator is None else (tenant, originator)


def apply(fact: Fact, analyser: Analyser) -> None:
    """Count one fact. Raises ``ValueError`` / ``TypeError`` / ``IndexError`` on a malformed one."""
    kind, tenant = fact[0], str(fact[1])
    if kind == "a":
        _, _, originator, at, callee, flags, caller_id, decision_id = fact
        bits = int(flags)  # type: ignore[call-overload]
        analyser.attempt(tenant, str(originator), float(at), int(callee),  # type: ignore[arg-type, call-overload]
                         bool(bits & REFUSED), bool(bits & ALLOWED), bool(bits & SERVICE), str(caller_id),
                         str(decision_id))
    elif kind == "e":
        _, _, originator, at, answered, billsec, call_id = fact
        analyser.ended(tenant, str(originator), float(at), bool(answered), float(billsec),  # type: ignore[arg-type]
                       str(call_id))
    else:
        _, _, caller_id, at = fact
        analyser.complaint(tenant, str(caller_id), float(at))  # type: ignore[arg-type]
