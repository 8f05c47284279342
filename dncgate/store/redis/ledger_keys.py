"""Redis key layout of the consent ledger. Every key of one tenant carries the tag ``{c:TENANT}``.

==================================  ======  =============================================================
key                                 type    holds
==================================  ======  =============================================================
``dnc:{c:T}:con:<digits>:<entity>`` string  current consent (``ConsentState`` JSON): read by ``facts()``
``dnc:{c:T}:sub:<digits>``          hash    ``declined`` -> ``a,b`` or ``*``; ``b:<entity>`` -> record id
``dnc:{c:T}:ents:<digits>``         set     entities holding a consent record for the callee (queries)
``dnc:{c:T}:log``                   stream  the append-only history; ID ``<seq>-0``, field ``e`` = event JSON
``dnc:{c:T}:head``                  string  ``<seq> <hash>`` of the newest record
``dnc:{c:T}:anchor``                string  ``<seq> <hash>`` of the last record purged (chain start)
``dnc:{c:T}:outbox``                list    preference events waiting for upload to the national platform
==================================  ======  =============================================================
"""

from __future__ import annotations

from dncgate.store.redis.keys import TenantKey, tenant_tag

FAMILY = "c"  # the hash tag's family: {c:TENANT}
log = TenantKey(FAMILY, "log")
head = TenantKey(FAMILY, "head")
anchor = TenantKey(FAMILY, "anchor")
outbox = TenantKey(FAMILY, "outbox")


def consent(tenant: str, entity: str, digits: int) -> str:
    return f"{tenant_tag(FAMILY, tenant)}:con:{digits}:{entity}"


def prefs(tenant: str, digits: int) -> str:
    return f"{tenant_tag(FAMILY, tenant)}:sub:{digits}"


def entities(tenant: str, digits: int) -> str:
    return f"{tenant_tag(FAMILY, tenant)}:ents:{digits}"


def block_field(entity: str) -> str:
    return f"b:{entity}"
