"""A case file for a regulator: the case, every transition, and the chain's verification.

``case_file`` writes a JSON document: the case's current state, its transitions oldest first, and
``chain``: genesis, head seq and hash, and whether the chain verified. ``verify_case_file``
recomputes every hash from the document alone: the chain must run unbroken from the genesis to
the head, so a dropped, reordered or altered transition fails the check.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dncgate.enforcement.model import GENESIS, Case, Transition, iso
from dncgate.enforcement.protocol import CaseStore
from dncgate.errors import CaseError


async def case_file(store: CaseStore, case: Case) -> dict[str, Any]:
    steps = [step async for step in store.transitions(case.tenant, case.case_id) if step.seq <= case.seq]
    document: dict[str, Any] = {
        "format": "dncgate-case-file/1", "exported_at": iso(datetime.now(UTC)), "case": case.as_dict(),
        "transitions": [step.as_dict() for step in steps],
    }
    try:
        count = verify_case_file(document)
        document["chain"] = {"genesis": GENESIS, "head_seq": case.seq, "head_hash": case.head_hash, "verified": True,
                             "transitions": count}
    except CaseError as exc:
        document["chain"] = {"genesis": GENESIS, "head_seq": case.seq, "head_hash": case.head_hash, "verified": False,
                             "problem": str(exc)}
    return document


def verify_case_file(document: dict[str, Any]) -> int:
    """The number of transitions, after checking the chain from genesis to the case's head.
    Raises ``CaseError`` saying where it breaks."""
    try:
        case = document["case"]
        raw_steps = document["transitions"]
        head_seq, head_hash = int(case["seq"]), str(case["head_hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CaseError(f"not a case file: {exc}") from None
    previous, seq = GENESIS, 0
    for raw in raw_steps:
        step = Transition.from_json(_json(raw))
        if step.seq != seq + 1 or step.prev_hash != previous:
            after = previous[:12]
            raise CaseError(f"transition seq {step.seq}: expected seq {seq + 1} after hash {after}")
        if not step.verifies():
            raise CaseError(f"transition seq {step.seq}: its hash does not match its content")
        previous, seq = step.hash, step.seq
    if (seq, previous) != (head_seq, head_hash):
        raise CaseError(f"chain ends at seq {seq}, the case's head is seq {head_seq}: transitions missing")
    return seq


def _json(raw: Any) -> str:
    return json.dumps(raw)
