"""Redis key layout of enforcement cases. Every key of one tenant carries the tag ``{e:TENANT}``, so
an append (a Lua script over the tenant's keys) stays in one Redis Cluster slot.

===================================  ======  ============================================================
key                                  type    holds
===================================  ======  ============================================================
``dnc:{e:T}:standing``               hash    ``kind:value`` -> ``s`` | ``r:<per minute>:<concurrent>``:
                                             read by ``facts()`` in its pipeline
``dnc:{e:T}:log:<case id>``          list    the case's transitions (JSON), oldest first
``dnc:{e:T}:cases``                  hash    case id -> the case (JSON)
``dnc:{e:T}:updated``                zset    case id by last update (ms): listing, newest first
``dnc:{e:T}:open``                   hash    ``kind:value`` -> the id of its case that is not closed
``dnc:{e:T}:idem``                   hash    idempotency key -> the transition it wrote (JSON)
``dnc:{e:T}:complaints``             hash    complaint id -> the complaint (JSON)
``dnc:{e:T}:complaints:by_time``     zset    complaint id by receipt (ms)
===================================  ======  ============================================================

Nothing here is ever deleted by dncgate (no command removes a log or a case).
"""

from __future__ import annotations


def tag(tenant: str) -> str:
    return "dnc:{e:" + tenant + "}"


def standing(tenant: str) -> str:
    return f"{tag(tenant)}:standing"


def log(tenant: str, case_id: str) -> str:
    return f"{tag(tenant)}:log:{case_id}"


def cases(tenant: str) -> str:
    return f"{tag(tenant)}:cases"


def updated(tenant: str) -> str:
    return f"{tag(tenant)}:updated"


def open_cases(tenant: str) -> str:
    return f"{tag(tenant)}:open"


def idempotency(tenant: str) -> str:
    return f"{tag(tenant)}:idem"


def complaints(tenant: str) -> str:
    return f"{tag(tenant)}:complaints"


def complaints_by_time(tenant: str) -> str:
    return f"{tag(tenant)}:complaints:by_time"
