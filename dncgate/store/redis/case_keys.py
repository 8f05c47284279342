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

from dncgate.store.redis.keys import TenantKey, tenant_tag

FAMILY = "e"  # the hash tag's family: {e:TENANT}
standing = TenantKey(FAMILY, "standing")
cases = TenantKey(FAMILY, "cases")
updated = TenantKey(FAMILY, "updated")
open_cases = TenantKey(FAMILY, "open")
idempotency = TenantKey(FAMILY, "idem")
complaints = TenantKey(FAMILY, "complaints")
complaints_by_time = TenantKey(FAMILY, "complaints:by_time")


def log(tenant: str, case_id: str) -> str:
    return f"{tenant_tag(FAMILY, tenant)}:log:{case_id}"
