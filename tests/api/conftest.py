from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dncgate.api.app import install_api
from dncgate.api.context import ApiContext
from dncgate.api.keys import hash_key
from dncgate.audit import AuditSink
from dncgate.gate import Gate
from dncgate.hours import CallingHours, parse_overrides
from dncgate.http import make_app
from dncgate.metrics import GateMetrics
from dncgate.model import TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.settings import ApiKeySettings, ApiSettings, ConsentSettings
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.ledger import SqliteLedger
from tests.conftest import TEST_STORE_DEADLINE

ACME_KEY = "dncg_acme-test-key-0123456789"
GLOBEX_KEY = "dncg_globex-test-key-9876543210"
NIGHT_KEY = "dncg_night-test-key-5555555555"
LISTED = "+8613800138000"
CLEAR = "+8613900139000"
# Thursday 2026-11-26 11:00 in Shanghai.
NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
TENANTS = {
    "acme": TenantPolicy("acme", DialPlan(region="CN"), hours=CallingHours()),
    "globex": TenantPolicy("globex", DialPlan(region="CN"), hours=CallingHours()),
    # Its callees in +86 are taken to live in New York (an override): 22:00 there at NOW.
    "night": TenantPolicy("night", DialPlan(region="CN"), hours=CallingHours(
        zone_overrides=parse_overrides({"+86": "America/New_York"}))),
}


def evidence(**overrides: Any) -> dict[str, Any]:
    return {"channel": "web", "captured_at": "2026-11-26T10:59:00+08:00", "source": "203.0.113.7",
            "shown": "template:optin-v3", "captured_by": "crm-7"} | overrides


def auth(key: str = ACME_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Api:
    client: TestClient  # type: ignore[type-arg]
    ledger: SqliteLedger
    store: SqliteListStore

    async def post(self, path: str, body: Any, key: str = ACME_KEY) -> tuple[int, Any]:
        response = await self.client.post(path, json=body, headers=auth(key))
        return response.status, await response.json()

    async def get(self, path: str, key: str = ACME_KEY, **params: str) -> tuple[int, Any]:
        response = await self.client.get(path, params=params, headers=auth(key))
        return response.status, await response.json()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    path = tmp_path / "api.sqlite3"
    store = SqliteListStore(path)
    await store.replace_list("national", [int(LISTED[1:])])
    ledger = SqliteLedger(path, ConsentSettings())
    audit = AuditSink(store)
    audit.start()
    gate = Gate(TENANTS, store, audit, store_deadline=TEST_STORE_DEADLINE, clock=lambda: NOW)
    keys = {f"{t}-key": ApiKeySettings(t, hash_key(k)) for t, k in
            (("acme", ACME_KEY), ("globex", GLOBEX_KEY), ("night", NIGHT_KEY))}
    app = make_app(store, GateMetrics(), {"agi": False, "esl": False})
    install_api(app, ApiContext.of(gate, ledger, ApiSettings(enabled=True, keys=keys)))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Api(client, ledger, store)
    finally:
        await client.close()
        await audit.close()
        await ledger.close()
        await store.close()
