"""Open the store the configuration names, and the consent ledger on the same backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dncgate.settings import ConsentSettings, StoreSettings
from dncgate.store.protocol import ListStore

if TYPE_CHECKING:
    from dncgate.consent.ledger import Ledger
    from dncgate.enforcement.protocol import CaseStore


async def open_store(config: StoreSettings) -> ListStore:
    """The configured backend, ready to use. Raises ``StoreError`` if it cannot be opened."""
    if config.backend == "redis":
        from dncgate.store.redis import RedisListStore, RedisSettings

        timeout = config.timeout_ms / 1000
        return await RedisListStore.connect(
            RedisSettings(url=config.url, socket_timeout=timeout, connect_timeout=timeout)
        )
    from dncgate.store.sqlite import SqliteListStore

    return SqliteListStore(config.path)


def open_ledger(store: StoreSettings, config: ConsentSettings) -> Ledger:
    """The consent ledger in the configured backend (the SQLite file or the Redis of the list store)."""
    if store.backend == "redis":
        from dncgate.store.redis.ledger import RedisLedger

        return RedisLedger.connect(store.url, config, timeout=max(store.timeout, 1.0))
    from dncgate.store.sqlite.ledger import SqliteLedger

    return SqliteLedger(store.path, config)


def open_case_store(store: StoreSettings) -> CaseStore:
    """The enforcement-case store in the configured backend (the SQLite file or the Redis of the list store)."""
    if store.backend == "redis":
        from dncgate.store.redis.cases import RedisCaseStore

        return RedisCaseStore.connect(store.url, timeout=max(store.timeout, 1.0))
    from dncgate.store.sqlite.cases import SqliteCaseStore

    return SqliteCaseStore(store.path)
