"""Open the consent ledger on the configured store backend."""

from __future__ import annotations

from dncgate.config import StoreConfig
from dncgate.consent.config import ConsentConfig
from dncgate.consent.ledger import Ledger


def open_ledger(store: StoreConfig, config: ConsentConfig) -> Ledger:
    if store.backend == "redis":
        from dncgate.store.redis.ledger import RedisLedger

        return RedisLedger.connect(store.url, config, timeout=max(store.timeout_ms / 1000, 1.0))
    from dncgate.store.sqlite.ledger import SqliteLedger

    return SqliteLedger(store.path, config)
