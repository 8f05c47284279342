"""A gate and a consent ledger on one SQLite file (as ``dncgate serve`` opens them), for the IVR tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from dncgate.audit import AuditSink
from dncgate.consent.model import Action, Channel, Evidence, LedgerEvent
from dncgate.gate import CheckRequest, Gate
from dncgate.ivr.runner import IvrContext
from dncgate.model import Originator, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.settings import ConsentSettings, IvrSettings
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.ledger import SqliteLedger
from tests.conftest import TEST_STORE_DEADLINE

CALLER = "+12015550188"  # the subscriber calling the IVR
TENANTS = {
    "default": TenantPolicy("default", DialPlan(region="US")),
    "acme": TenantPolicy("acme", DialPlan(region="US", technical_prefixes=("9",))),
    "china": TenantPolicy("china", DialPlan(region="CN"), language="zh"),
}


@dataclass
class IvrLab:
    gate: Gate
    store: SqliteListStore
    ledger: SqliteLedger
    ctx: IvrContext

    async def grant(self, entity: str, number: str = CALLER, tenant: str = "acme",
                    categories: tuple[str, ...] = ()) -> None:
        evidence = Evidence(Channel.WEB, datetime.now(UTC), "203.0.113.7", "template:optin-v3", "crm")
        await self.ledger.append(LedgerEvent(tenant=tenant, action=Action.GRANT, callee=number, entity=entity,
                                             categories=categories, evidence=evidence))

    async def decide(self, number: str = CALLER, *, tenant: str = "acme", entity: str = "",
                     category: str | None = None) -> str:
        result = await self.gate.check(CheckRequest(
            dialled=number, door="test", tenant=tenant, purpose="marketing", category=category,
            originator=Originator(entity=entity)), structlog.get_logger())
        return result.decision.reason.value

    async def history(self, tenant: str = "acme", number: str = CALLER) -> list[LedgerEvent]:
        return [e async for e in self.ledger.history(tenant, int(number[1:]))]


@pytest.fixture
async def ivr_lab(tmp_path: Path) -> AsyncIterator[IvrLab]:
    path = tmp_path / "ivr.sqlite3"
    store = SqliteListStore(path)
    await store.replace_list("national", [12015550123])
    ledger = SqliteLedger(path, ConsentSettings())
    audit = AuditSink(store)
    audit.start()
    gate = Gate(TENANTS, store, audit, store_deadline=TEST_STORE_DEADLINE)
    ctx = IvrContext(TENANTS, ledger, IvrSettings(digit_timeout=0.2))
    try:
        yield IvrLab(gate, store, ledger, ctx)
    finally:
        await audit.close()
        await ledger.close()
        await store.close()
