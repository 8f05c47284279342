"""A service port sending marketing opens an enforcement case: the message service's alert goes to
the enforcement desk's ``on_alert`` (as ``serve`` wires it), which opens the port's case."""

from __future__ import annotations

from pathlib import Path

from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
from dncgate.enforcement.desk import desk_of
from dncgate.messages.service import MessageService
from dncgate.settings.enforcement import EnforcementSettings
from dncgate.store.sqlite.cases import SqliteCaseStore
from tests.messages.conftest import CLEAR, SERVICE_PORT, SETTINGS, Lab


async def test_a_misusing_service_port_gets_a_case(lab: Lab, tmp_path: Path) -> None:
    cases = SqliteCaseStore(tmp_path / "messages.sqlite3")
    try:
        desk = desk_of(EnforcementSettings(enabled=True), ["acme"], cases, lab.store, clock=lab.clock)
        service = MessageService.of(lab.gate, lab.ledger, SETTINGS, on_alert=desk.on_alert, clock=lab.clock)
        lab.service = service
        outcome = await lab.send(SERVICE_PORT, CLEAR, "50% off today", purpose="marketing")
        assert outcome.check is not None
        assert outcome.check.decision.reason.value == "service_port_misuse"
        await service.misuse.drain()
        case = await cases.open_case(OriginatorKey("acme", OriginatorKind.CALLER_ID, SERVICE_PORT))
        assert case is not None
        assert case.state.value == "open"
        assert [a.rule for a, _ in await desk.alerts.alerts("acme")] == ["service_port_misuse"]
    finally:
        await cases.close()
