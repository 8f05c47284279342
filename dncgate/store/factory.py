"""Open the store the configuration names, and the consent ledger on the same backend.

Only a caller that writes lists (``lists load|sync|rule``, ``serve --demo``, ``dncgate init``)
passes ``create=True``: a program that only reads (``check``, ``serve``, ``audit``, ``consent``,
classic AGI) given a SQLite path that does not exist gets ``StoreMissing`` naming it, never a new
empty file that would answer every check "not listed".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dncgate.clock import Clock, utc_now
from dncgate.settings import ConsentSettings, StoreSettings
from dncgate.store.errors import StoreMissing
from dncgate.store.protocol import ListStore

if TYPE_CHECKING:
    from dncgate.consent.ledger import Ledger
    from dncgate.enforcement.feed_standings import StandingsSink
    from dncgate.enforcement.protocol import CaseStore
    from dncgate.operators import OperatorStore


def require_store(config: StoreSettings) -> None:
    """Raise ``StoreMissing`` when the configured SQLite file does not exist (Redis: nothing to check)."""
    if config.backend == "sqlite" and not config.path.is_file():
        where = config.path.absolute()
        raise StoreMissing(
            f"the SQLite store {where} does not exist; create it with 'dncgate init' (or load a list with "
            f"'dncgate lists load'), or set [store] path / DNCGATE_STORE__PATH to the gate's store"
        )


async def open_store(config: StoreSettings, *, create: bool = False) -> ListStore:
    """The configured backend, ready to use. ``create``: a SQLite file (and its directory) that does
    not exist is created; else ``StoreMissing``. Raises ``StoreError`` if it cannot be opened."""
    if config.backend == "redis":
        from dncgate.store.redis import RedisListStore, RedisSettings

        timeout = config.timeout_ms / 1000
        return await RedisListStore.connect(
            RedisSettings(url=config.url, cluster=config.cluster, socket_timeout=timeout, connect_timeout=timeout)
        )
    from dncgate.store.sqlite import SqliteListStore

    if not create:
        require_store(config)
    return SqliteListStore(config.path, create=create)


def open_ledger(store: StoreSettings, config: ConsentSettings, *, clock: Clock = utc_now) -> Ledger:
    """The consent ledger in the configured backend (the SQLite file or the Redis of the list store)."""
    if store.backend == "redis":
        from dncgate.store.redis.ledger import RedisLedger

        return RedisLedger.connect(store.url, config, clock=clock, timeout=max(store.timeout, 1.0),
                                   cluster=store.cluster)
    from dncgate.store.sqlite.ledger import SqliteLedger

    return SqliteLedger(store.path, config, clock=clock)


def open_case_store(store: StoreSettings) -> CaseStore:
    """The enforcement-case store in the configured backend (the SQLite file or the Redis of the list store)."""
    if store.backend == "redis":
        from dncgate.store.redis.cases import RedisCaseStore

        return RedisCaseStore.connect(store.url, timeout=max(store.timeout, 1.0), cluster=store.cluster)
    from dncgate.store.sqlite.cases import SqliteCaseStore

    return SqliteCaseStore(store.path)


def open_standings_sink(store: StoreSettings) -> StandingsSink:
    """Where a reseller applies its carrier's standings: the case store of the configured backend."""
    if store.backend == "redis":
        from dncgate.store.redis.cases import RedisCaseStore

        return RedisCaseStore.connect(store.url, timeout=max(store.timeout, 1.0), cluster=store.cluster)
    from dncgate.store.sqlite.cases import SqliteCaseStore

    return SqliteCaseStore(store.path)


def open_operator_store(store: StoreSettings) -> OperatorStore:
    """The console's operator accounts in the configured backend (the SQLite file or the Redis of the list store)."""
    if store.backend == "redis":
        from dncgate.store.redis.operators import RedisOperatorStore

        return RedisOperatorStore.connect(store.url, timeout=max(store.timeout, 1.0), cluster=store.cluster)
    from dncgate.store.sqlite.operators import SqliteOperatorStore

    return SqliteOperatorStore(store.path)
