"""What the analytics hand to enforcement: one alert per rule crossing, with its evidence.

An alert names the originator it is about (its tenant, which key identifies it, and the value),
the rule and severity that fired, whether the rule runs report-only, the window's figures when it
fired, and sample decision and call ids an operator or a regulator can look up in the audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class OriginatorKind(StrEnum):
    """Which field of a call identifies the originator (configurable per tenant)."""

    ACCOUNT = "account"
    TRUNK = "trunk"
    CALLER_ID = "caller_id"
    ENTITY = "entity"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, order=True)
class OriginatorKey:
    tenant: str
    kind: OriginatorKind
    value: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.kind.value}:{self.value}"


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str  # unique; stable across a restart for the same crossing
    originator: OriginatorKey
    rule: str  # the rule's name in the tenant's configuration
    severity: Severity
    raised_at: datetime  # the simulated or real time of the call fact that crossed the threshold
    window: str  # "1m", "1h", "24h" or "baseline"
    figures: Mapping[str, float]  # the window's features when it fired (the evidence)
    threshold: float
    report_only: bool = False  # the rule only reports: enforcement opens no case from it
    sample_decisions: tuple[str, ...] = ()  # decision ids (the audit's)
    sample_calls: tuple[str, ...] = ()  # switch call ids (the call feeds')
    detail: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "tenant": self.originator.tenant,
            "originator_kind": self.originator.kind.value,
            "originator": self.originator.value,
            "rule": self.rule,
            "severity": self.severity.value,
            "raised_at": self.raised_at.isoformat(),
            "window": self.window,
            "figures": dict(self.figures),
            "threshold": self.threshold,
            "report_only": self.report_only,
            "sample_decisions": list(self.sample_decisions),
            "sample_calls": list(self.sample_calls),
            "detail": self.detail,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }


SERVICE_PORT_MISUSE = "service_port_misuse"  # the rule name of the alert below


def service_port_misuse(
    tenant: str, port: str, *, entity: str, raised_at: datetime, window_started: datetime, window: str,
    messages: int, sample_decisions: tuple[str, ...],
) -> Alert:
    """A port registered for service messages sent marketing ones (the gate refused them): the
    regulation forbids repurposing a service port, so every such window is a signal against the
    port (the originator key the gate looks up as ``caller_id:PORT``). One alert per window."""
    return Alert(
        alert_id=f"{SERVICE_PORT_MISUSE}:{tenant}:{port}:{int(window_started.timestamp())}",
        originator=OriginatorKey(tenant, OriginatorKind.CALLER_ID, port),
        rule=SERVICE_PORT_MISUSE, severity=Severity.WARNING, raised_at=raised_at, window=window,
        figures={"marketing_messages": float(messages)}, threshold=1.0, sample_decisions=sample_decisions,
        detail="a port registered for service messages sent marketing messages", extra={"entity": entity},
    )


def alert_of(data: Mapping[str, Any]) -> Alert:
    """An alert from ``Alert.as_dict``. Raises ``ValueError`` (or ``KeyError``/``TypeError``) on anything else."""
    figures = data.get("figures", {})
    if not isinstance(figures, Mapping):
        raise ValueError("figures: an object of numbers")
    return Alert(
        alert_id=str(data["alert_id"]),
        originator=OriginatorKey(str(data["tenant"]), OriginatorKind(data["originator_kind"]), str(data["originator"])),
        rule=str(data["rule"]), severity=Severity(data["severity"]),
        raised_at=datetime.fromisoformat(str(data["raised_at"])), window=str(data.get("window", "")),
        figures={str(k): float(v) for k, v in figures.items()}, threshold=float(data.get("threshold", 0.0)),
        report_only=bool(data.get("report_only", False)),
        sample_decisions=tuple(str(i) for i in data.get("sample_decisions", ())),
        sample_calls=tuple(str(i) for i in data.get("sample_calls", ())), detail=str(data.get("detail", "")),
        extra=dict(data.get("extra", {})),
    )
