"""The console's context from what ``serve`` has opened (kept here, so ``service`` grows by a line)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, cast

from dncgate.consent.ledger import Ledger
from dncgate.console.context import AuditStore, ConsoleContext
from dncgate.console.health import GateHealth, ServingDoor
from dncgate.enforcement.desk import EnforcementDesk
from dncgate.operators import OperatorStore
from dncgate.settings import Settings

if TYPE_CHECKING:
    from dncgate.app import App


def console_context(config: Settings, app: App, operators: OperatorStore, ledger: Ledger,
                    desk: EnforcementDesk | None, clock: Callable[[], datetime],
                    doors: Mapping[str, ServingDoor | None]) -> ConsoleContext:
    if app.metrics is None:
        raise RuntimeError("the console reads the gate's metrics: open_app(metrics=True)")
    if not hasattr(app.store, "audit_search"):
        raise RuntimeError(f"{type(app.store).__name__} does not answer audit searches")
    health = GateHealth(app.metrics.registry, app.audit, dict(doors))
    return ConsoleContext(config.console, config.tenants, cast(AuditStore, app.store), operators, ledger, health,
                          desk, clock)
