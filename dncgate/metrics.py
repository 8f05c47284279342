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

        self.language_fallbacks = Counter(
            "dncgate_language_fallbacks",
            "Requests whose language was not a language tag: the tenant's own language was used",
            ("door",),
            registry=self.registry,
        )

    def observe(
        self, record: AuditRecord, latency_us: int, *, tenant: str | None = None, language_refused: bool = False,
    ) -> None:
        """Count one decision. ``tenant``: its label (the gate passes ``unknown`` for a tenant that is not
        configured, so that names in requests cannot add series without limit); default the record's."""
        label = record.tenant if tenant is None else tenant
        self.decisions.labels(label, record.door, record.verdict, record.outcome, record.reason).inc()
        self.latency.labels(record.door).observe(latency_us / 1e6)
        if language_refused:
            self.language_fallbacks.labels(record.door).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
