from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dncgate.consent.ledger import Ledger
from dncgate.consent.model import Action, Channel, Evidence, LedgerEvent
from dncgate.settings import ConsentSettings
from dncgate.store.protocol import ListStore
from tests.conftest import RedisServer, redis_test_settings


class Clock:
    """A clock the test moves: starts at 2026-01-05 09:00 UTC."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Backend:
    name: str
    store: ListStore
    ledger: Ledger
    clock: Clock


@pytest.fixture(params=["sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[Backend]:
    clock = Clock()
    config = ConsentSettings()
    store: ListStore
    ledger: Ledger
    if request.param == "sqlite":
        from dncgate.store.sqlite import SqliteListStore
        from dncgate.store.sqlite.ledger import SqliteLedger

        store = SqliteListStore(tmp_path / "dncgate.sqlite3")
        ledger = SqliteLedger(tmp_path / "dncgate.sqlite3", config, clock=clock)
    else:
        from dncgate.store.redis import RedisListStore
        from dncgate.store.redis.ledger import RedisLedger

        redis_server.flush()
        store = await RedisListStore.connect(redis_test_settings(redis_server.url))
        ledger = RedisLedger.connect(redis_server.url, config, clock=clock)
    try:
        yield Backend(request.param, store, ledger, clock)
    finally:
        await ledger.close()
        await store.close()


def evidence(channel: Channel = Channel.WEB, source: str = "203.0.113.7") -> Evidence:
    return Evidence(channel, datetime(2026, 1, 5, 8, 59, tzinfo=UTC), source, "template:web-optin-v3", "crm-7")


EventMaker = Callable[..., LedgerEvent]


def event(action: Action, callee: str = "+8613800138000", *, tenant: str = "acme", entity: str = "bank-1",
          categories: tuple[str, ...] = (), **kw: object) -> LedgerEvent:
    return LedgerEvent(tenant=tenant, action=action, callee=callee, entity=entity, categories=categories,
                       evidence=evidence(), **kw)  # type: ignore[arg-type]
