"""Open the store the configuration names."""

from __future__ import annotations

from dncgate.config import StoreConfig
from dncgate.store.protocol import ListStore


async def open_store(config: StoreConfig) -> ListStore:
    """The configured backend, ready to use. Raises ``StoreError`` if it cannot be opened."""
    if config.backend == "redis":
        from dncgate.store.redis import RedisListStore, RedisSettings

        timeout = config.timeout_ms / 1000
        return await RedisListStore.connect(
            RedisSettings(url=config.url, socket_timeout=timeout, connect_timeout=timeout)
        )
    from dncgate.store.sqlite import SqliteListStore

    return SqliteListStore(config.path)
