"""What the console's pages read and act through: the same objects ``serve`` gives the API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dncgate.audit_record import AuditRecord
from dncgate.consent.ledger import Ledger
from dncgate.console.sessions import SessionBook
from dncgate.enforcement.desk import EnforcementDesk
from dncgate.model import TenantPolicy
from dncgate.operators import Operator, OperatorStore, Roster
from dncgate.settings import ConsoleSettings
from dncgate.store.audit_query import AuditQueries
from dncgate.store.protocol import ListStore


class AuditStore(ListStore, AuditQueries, Protocol):
    """A list store that answers the console's audit searches (both backends do)."""


class Health(Protocol):
    """The gate's running state the overview shows (``service`` fills it in)."""

    def doors(self) -> Mapping[str, bool]: ...

    def audit_backlog(self) -> int: ...

    def latency_quantiles(self) -> tuple[float | None, float | None]:
        """p50 and p99 of a decision (its store lookup included), in ms; None before any."""
        ...

    def sync_failures(self) -> Mapping[tuple[str, str], int]:
        """(list, cause) -> failed syncs since start."""
        ...


@dataclass
class ConsoleContext:
    settings: ConsoleSettings
    tenants: Mapping[str, TenantPolicy]
    store: AuditStore
    operators: OperatorStore
    ledger: Ledger
    health: Health
    desk: EnforcementDesk | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sessions: SessionBook = field(init=False)
    roster: Roster = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = SessionBook(idle=timedelta(minutes=self.settings.session_idle_minutes),
                                    max_sessions=self.settings.max_sessions)
        self.roster = Roster(self.operators)

    def visible_tenants(self, operator: Operator) -> list[str]:
        return operator.visible(sorted(self.tenants))

    def record_visible(self, operator: Operator, record: AuditRecord | None) -> bool:
        return record is not None and operator.sees(record.tenant) and record.tenant in self.tenants
