"""Redis key layout of enforcement cases. Every key of one tenant carries the tag ``{e:TENANT}``, so
an append (a Lua script over the tenant's keys) stays in one Redis Cluster slot.

===================================  ======  ============================================================
key                                  type    holds
===================================  ======  ============================================================
``dnc:{e:T}:standing``               hash    ``kind:value`` -> ``s`` | ``r:<per minute>:<concurrent>``:
                                             read by ``facts()`` in its pipeline: the ``strictest`` of
                                             ``own`` and ``feed``
``dnc:{e:T}:own``                    hash    ``kind:value`` -> the standing of its open case alone
``dnc:{e:T}:version``                string  the version of the standings a carrier's feed serves
                                             (``enforcement.feed_standings``), bumped by every append
``dnc:{e:T}:feed``                   hash    a reseller's: ``kind:value`` -> its carrier feed's standing
``dnc:{e:T}:feed:version``           string  a reseller's: the version of the feed's document applied
``dnc:{e:T}:feed:generation``        string  a reseller's: bumped by every apply (its compare-and-set)
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
own = TenantKey(FAMILY, "own")
version = TenantKey(FAMILY, "version")
feed = TenantKey(FAMILY, "feed")
feed_version = TenantKey(FAMILY, "feed:version")
feed_generation = TenantKey(FAMILY, "feed:generation")
cases = TenantKey(FAMILY, "cases")
updated = TenantKey(FAMILY, "updated")
open_cases = TenantKey(FAMILY, "open")
idempotency = TenantKey(FAMILY, "idem")
complaints = TenantKey(FAMILY, "complaints")
complaints_by_time = TenantKey(FAMILY, "complaints:by_time")


def log(tenant: str, case_id: str) -> str:
    return f"{tenant_tag(FAMILY, tenant)}:log:{case_id}"
