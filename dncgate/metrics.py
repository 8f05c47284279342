"""Prometheus metrics for decisions; one registry per gate so tests and processes never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from dncgate.audit_record import AuditRecord

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class GateMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "dncgate_decisions",
            "Decisions by tenant, door, verdict, outcome and reason",
            ("tenant", "door", "verdict", "outcome", "reason"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "dncgate_decision_seconds",
            "Time from request to verdict, store lookup included",
            ("door",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, record: AuditRecord, latency_us: int) -> None:
        self.decisions.labels(record.tenant, record.door, record.verdict, record.outcome, record.reason).inc()
        self.latency.labels(record.door).observe(latency_us / 1e6)

    def render(self) -> bytes:
        return generate_latest(self.registry)
