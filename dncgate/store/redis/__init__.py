"""The Redis backend: the list store, the consent ledger and the audit stream on one Redis.

Everything that knows a Redis key or command lives here: ``lists`` (the list store and its
lookups), ``load`` (building a version), ``blocks`` (the intset encoding of numbers), ``keys``
and ``ledger_keys`` (the key layouts), ``conn`` and ``mux`` (connections), ``cluster`` (lookups on a
Redis Cluster, ``[store] cluster``), ``audit`` and ``ledger`` (the consent ledger, implementing
``dncgate.consent.ledger.Ledger``).

Only the list store is re-exported: importing the ledger costs the consent model, which a
lookup-only process (classic AGI) does not need.
"""

from dncgate.store.redis.conn import RedisSettings
from dncgate.store.redis.lists import RedisListStore

__all__ = ["RedisListStore", "RedisSettings"]
