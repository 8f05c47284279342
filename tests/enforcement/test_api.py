"""Enforcement over HTTP: an alert posted opens a case, a suspension inside the notice period is
scheduled, the check endpoint then refuses the account's marketing call with originator_suspended
and 603; an appeal reinstates it; complaints are matched to the audit and clocked in working days.
Bad input gets the documented error shape and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from dncgate.api.app import install_api
from dncgate.api.context import ApiContext
from dncgate.api.enforcement import install_enforcement
from dncgate.api.keys import hash_key
from dncgate.audit import AuditSink
from dncgate.early_warning.alerts import OriginatorKey
from dncgate.enforcement.desk import EnforcementDesk, desk_of
from dncgate.gate import CheckRequest, Gate
from dncgate.http import make_app
from dncgate.metrics import GateMetrics
from dncgate.model import Originator, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.settings import ApiKeySettings, ApiSettings, ConsentSettings
from dncgate.settings.enforcement import ComplaintSettings, EnforcementSettings
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.cases import SqliteCaseStore
from dncgate.store.sqlite.early_warning import SqliteEarlyWarningStore
from dncgate.store.sqlite.ledger import SqliteLedger
from tests.conftest import TEST_STORE_DEADLINE
from tests.enforcement.conftest import Clock

KEY, OTHER_KEY = "dncg_acme-enf-key-0123456789", "dncg_globex-enf-key-0123456789"
TENANTS = {"acme": TenantPolicy("acme", DialPlan(region="CN")), "globex": TenantPolicy("globex", DialPlan(region="CN"))}


class Api:
    def __init__(self, client: TestClient, desk: EnforcementDesk, clock: Clock,  # type: ignore[type-arg]
                 signals: list[tuple[OriginatorKey, Any]], gate: Gate) -> None:
        self.client, self.desk, self.clock, self.signals, self.gate = client, desk, clock, signals, gate

    async def call(self, method: str, path: str, body: Any = None, key: str = KEY, **headers: str) -> tuple[int, Any]:
        response = await self.client.request(method, path, json=body,
                                             headers={"Authorization": f"Bearer {key}", **headers})
        return response.status, await response.json()


@pytest.fixture(params=["memory", "sqlite"])
async def api(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    """The API on one enforcement desk; its alert book in memory or the early warning's SQLite file."""
    path = tmp_path / "api.sqlite3"
    store = SqliteListStore(path)
    await store.replace_list("national", [8613800138000])  # the tenants need a national list
    cases = SqliteCaseStore(path)
    ledger = SqliteLedger(path, ConsentSettings())
    audit = AuditSink(store, linger=0.0)
    audit.start()
    clock = Clock()
    gate = Gate(TENANTS, store, audit, store_deadline=TEST_STORE_DEADLINE, clock=clock)
    signals: list[tuple[OriginatorKey, Any]] = []
    settings = EnforcementSettings(enabled=True, notice_period=3600.0, auto_notice=True,
                                   complaints=ComplaintSettings(holidays=("2026-11-27",)))
    book = SqliteEarlyWarningStore(tmp_path / "ew.sqlite3") if request.param == "sqlite" else None
    desk = desk_of(settings, TENANTS, cases, store, clock=clock, on_complaint=lambda o, at: signals.append((o, at)),
                   alerts=book)
    keys = {"acme-ops": ApiKeySettings("acme", hash_key(KEY)),
            "globex-ops": ApiKeySettings("globex", hash_key(OTHER_KEY))}
    app = make_app(store, GateMetrics(), {"agi": False, "esl": False})
    install_api(app, ApiContext.of(gate, ledger, ApiSettings(enabled=True, keys=keys)))
    install_enforcement(app, desk)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Api(client, desk, clock, signals, gate)
    finally:
        await client.close()
        await desk.cases.drain()
        await audit.close()
        for closable in (cases, ledger, store, *([book] if book is not None else [])):
            await closable.close()


ALERT = {"alert_id": "ew-1", "originator_kind": "entity", "originator": "blasts", "rule": "short_calls",
         "severity": "critical", "figures": {"attempts_1m": 140, "short_share": 0.93}, "threshold": 60}


async def _check(api: Api, account: str) -> dict[str, Any]:
    # /v1/check's account is the API key's name; the entity is the caller's
    status, body = await api.call("GET", f"/v1/check?number=%2B8613900139000&entity={account}&purpose=marketing")
    assert status == 200
    return body  # type: ignore[no-any-return]


async def test_alert_to_suspension_to_reinstatement(api: Api) -> None:
    status, body = await api.call("POST", "/v1/alerts", ALERT)
    assert status == 202
    case_id = body["case"]["case_id"]
    assert body["case"]["state"] == "noticed"
    status, body = await api.call("POST", f"/v1/cases/{case_id}/actions", {"action": "suspend", "reason": "blast"},
                                  **{"Idempotency-Key": "op-1"})
    assert status == 201
    assert body["transition"]["action"] == "schedule_suspension"
    assert body["transition"]["actor"] == "api:acme-ops"
    again = await api.call("POST", f"/v1/cases/{case_id}/actions", {"action": "suspend", "reason": "blast"},
                           **{"Idempotency-Key": "op-1"})
    assert again[0] == 200
    assert again[1]["replayed"] is True
    assert (await _check(api, "blasts"))["verdict"] == "allow"  # the notice period is running
    api.clock.advance(hours=1)
    assert len(await api.desk.cases.tick()) == 1
    refused = await _check(api, "blasts")
    assert (refused["reason"], refused["sip_code"]) == ("originator_suspended", 603)
    assert (await _check(api, "people"))["verdict"] == "allow"
    status, body = await api.call("POST", f"/v1/cases/{case_id}/appeal", {"reason": "we hold consents"})
    assert body["case"]["state"] == "appealed"
    status, body = await api.call("POST", f"/v1/cases/{case_id}/appeal/decision",
                                  {"decision": "reinstate", "reason": "consents verified"})
    assert body["case"]["standing"] == "clear"
    assert (await _check(api, "blasts"))["verdict"] == "allow"
    status, document = await api.call("GET", f"/v1/cases/{case_id}/file")
    assert status == 200
    assert document["chain"]["verified"] is True
    assert [t["action"] for t in document["transitions"]] == [
        "open", "notice", "schedule_suspension", "suspend", "appeal", "reinstate"]
    status, alerts = await api.call("GET", "/v1/alerts")
    assert [a["alert_id"] for a in alerts["alerts"]] == ["ew-1"]
    status, _ = await api.call("POST", "/v1/alerts/ew-1/acknowledge")
    assert status == 200
    assert (await api.call("GET", "/v1/alerts?unacknowledged=true"))[1]["alerts"] == []


async def test_bad_input_gets_clear_errors_and_changes_nothing(api: Api) -> None:
    status, body = await api.call("POST", "/v1/alerts", {**ALERT, "originator_kind": "planet"})
    assert status == 422
    assert body["error"]["code"] == "invalid_alert"
    assert (await api.call("GET", "/v1/cases"))[1]["cases"] == []
    status, body = await api.call("POST", "/v1/cases/nope/actions", {"action": "warn", "reason": "x"})
    assert (status, body["error"]["code"]) == (404, "unknown_case")
    _, opened = await api.call("POST", "/v1/alerts", {**ALERT, "severity": "warning"})
    case_id = opened["case"]["case_id"]
    status, body = await api.call("POST", f"/v1/cases/{case_id}/actions", {"action": "close", "reason": "ok"})
    assert status == 201
    status, body = await api.call("POST", f"/v1/cases/{case_id}/appeal", {"reason": "too late"})
    assert (status, body["error"]["code"]) == (409, "case_refused")
    assert "closed" in body["error"]["message"]
    status, body = await api.call("POST", f"/v1/cases/{case_id}/actions", {"action": "fly", "reason": "x"})
    assert (status, body["error"]["code"]) == (422, "invalid_field")
    status, body = await api.call("GET", f"/v1/cases/{case_id}", key=OTHER_KEY)  # another tenant's case
    assert status == 404
    for bad in ({"complainant": "+8613900139000"}, {"complainant": "+86139", "originator_number": "+8610",
                                                    "called_at": "yesterday", "text": "x"}):
        status, body = await api.call("POST", "/v1/complaints", bad)
        assert (status, body["error"]["code"]) == (422, "invalid_complaint")
    assert (await api.call("GET", "/v1/complaints"))[1]["complaints"] == []
    assert api.signals == []


async def test_a_complaint_is_matched_to_the_audit_clocked_and_signalled(api: Api) -> None:
    log = structlog.get_logger("test")
    records = [(await api.gate.check(CheckRequest("+8613900139000", "test", tenant="acme", originator=Originator(
        caller_id=caller)), log)).record for caller in ("+8610500000", "+8610599999")]
    await api.gate.store.append_audit(records)  # written now (the sink would write them on a later turn)
    body = {"id": "c-1", "complainant": "+8613900139000", "originator_number": "+8610500000",
            "called_at": api.clock.at.isoformat(), "text": "third call today"}
    status, filed = await api.call("POST", "/v1/complaints", body)
    assert status == 201
    assert filed["complaint"]["decisions"] == [records[0].decision_id]
    # Thursday 2026-11-26; Friday 27 a holiday, then the weekend: Mon 30, Tue 1, Wed 2 December.
    assert date.fromisoformat(filed["complaint"]["deadlines"]["forward"][:10]) == date(2026, 12, 2)
    assert (await api.call("POST", "/v1/complaints", body))[1]["replayed"] is True
    assert api.signals[-1][0] == OriginatorKey("acme", api.signals[-1][0].kind, "+8610500000")
    status, stepped = await api.call("POST", "/v1/complaints/c-1/steps", {"step": "inform"})
    assert (status, stepped["error"]["code"]) == (422, "complaint_refused")
    status, stepped = await api.call("POST", "/v1/complaints/c-1/steps", {"step": "answer", "answer": "suspended"})
    assert stepped["complaint"]["answered_at"] is not None
