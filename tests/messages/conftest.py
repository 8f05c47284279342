"""A gate on a real SQLite store and ledger, a port registry, and the message service over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from dncgate.api.app import install_api
from dncgate.api.context import ApiContext
from dncgate.api.keys import hash_key
from dncgate.audit import AuditSink
from dncgate.audit_record import AuditRecord
from dncgate.consent.model import Action, Channel, Evidence, LedgerEvent
from dncgate.early_warning.alerts import Alert
from dncgate.gate import Gate
from dncgate.hours import CallingHours
from dncgate.http import make_app
from dncgate.messages.model import Message, MessageOutcome
from dncgate.messages.service import MessageService
from dncgate.metrics import GateMetrics
from dncgate.model import PortUse, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.settings import ApiKeySettings, ApiSettings, ConsentSettings
from dncgate.settings.messages import MessagesSettings, SenderPortSettings, TenantMessageSettings
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.ledger import SqliteLedger

LISTED = "+8613800138000"  # on the national list
CONSENTED = "+8613700137000"  # on the national list, consent to bank-1 for finance
CLEAR = "+8613900139000"
MARKETING_PORT, SERVICE_PORT, UNKNOWN_PORT = "106900001234", "95588", "106900009999"
TENANTS = {"acme": TenantPolicy("acme", DialPlan(region="CN"), hours=CallingHours())}
SETTINGS = MessagesSettings(enabled=True, tenants={"acme": TenantMessageSettings(
    ports={MARKETING_PORT: SenderPortSettings(PortUse.MARKETING, "bank-1", "finance"),
           SERVICE_PORT: SenderPortSettings(PortUse.SERVICE, "bank-1")},
    notice="Not delivered: the recipient does not accept marketing messages.",
)})
LOG = structlog.get_logger("tests.messages")


class Clock:
    """Thursday 2026-11-26 11:00 in Shanghai; the test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Lab:
    service: MessageService
    gate: Gate
    store: SqliteListStore
    ledger: SqliteLedger
    audit: AuditSink
    clock: Clock
    alerts: list[Alert] = field(default_factory=list)

    async def send(self, sender: str, recipient: str, body: str = "Hello", **kw: str) -> MessageOutcome:
        return await self.service.handle(Message(sender, recipient, body, kw.pop("door", "sip-message"),
                                                 tenant="acme", **kw), LOG)

    async def audit_records(self) -> list[AuditRecord]:
        await self.audit.close()  # writes what is queued
        return await self.store.audit_tail(100)


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    path = tmp_path / "messages.sqlite3"
    store = SqliteListStore(path)
    await store.replace_list("national", [int(LISTED[1:]), int(CONSENTED[1:])])
    clock = Clock()
    ledger = SqliteLedger(path, ConsentSettings(), clock=clock)
    await ledger.append(LedgerEvent(
        tenant="acme", action=Action.GRANT, callee=CONSENTED, entity="bank-1", categories=("finance",),
        evidence=Evidence(Channel.WEB, clock.now, "203.0.113.7", "template:optin-v3", "crm-7")))
    audit = AuditSink(store)
    audit.start()
    gate = Gate(TENANTS, store, audit, default_tenant="acme", clock=clock)
    alerts: list[Alert] = []

    async def on_alert(alert: Alert) -> None:
        alerts.append(alert)

    service = MessageService.of(gate, ledger, SETTINGS, on_alert=on_alert, clock=clock)
    try:
        yield Lab(service, gate, store, ledger, audit, clock, alerts)
    finally:
        await audit.close()
        await ledger.close()
        await store.close()


API_KEY = "dncg_messages-test-key-0123456789"


@pytest.fixture
async def client(lab: Lab) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """The /v1 API over the lab's gate and message service, with one key for tenant acme."""
    app = make_app(lab.store, GateMetrics(), {"agi": False, "esl": False})
    keys = {"sms-gw": ApiKeySettings("acme", hash_key(API_KEY))}
    install_api(app, ApiContext.of(lab.gate, lab.ledger, ApiSettings(enabled=True, keys=keys), messages=lab.service))
    test_client = TestClient(TestServer(app, host="127.0.0.1"))
    await test_client.start_server()
    try:
        yield test_client
    finally:
        await test_client.close()
