"""Prometheus metrics of a gate; one registry per gate so tests and processes never collide.

Besides decisions: the process and platform collectors, ``dncgate_build_info``, the doors' open
and refused sessions, store errors on the check path and the audit backlog. No ``_created``
series: a counter's creation time doubles the series for nothing a dashboard uses. The doors and
the audit sink are read when Prometheus scrapes (see :class:`_Watched`), nothing kept in step.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from dncgate import __version__
from dncgate.audit_record import AuditRecord

if TYPE_CHECKING:  # read at each scrape, never built here
    from dncgate.audit import AuditSink
    from dncgate.replica.store import ReplicaStore
    from dncgate.sessions import SessionServer
    from dncgate.store.redis.fact_consumer import PartitionConsumer
    from dncgate.store.redis.fact_producer import FactProducer

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
STORE_OPS = ("facts",)  # the store calls counted in dncgate_store_errors_total; shown at 0 from the start

disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide (prometheus_client has no per-registry switch)


class GateMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        build = Gauge("dncgate_build_info", "dncgate's version and Python's (always 1)", ("version", "python"),
                      registry=self.registry)
        build.labels(__version__, platform.python_version()).set(1)
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
        self.store_errors = Counter(
            "dncgate_store_errors", "Store calls on the check path that failed or missed their deadline", ("op",),
            registry=self.registry,
        )
        for op in STORE_OPS:
            self.store_errors.labels(op)
        # The series observe() counts in, by their labels (as many as the metrics have series: bounded
        # by the configured tenants, the doors, the verdicts, outcomes and reasons).
        self._decision_series: dict[tuple[str, str, str, str, str], Counter] = {}
        self._latency_series: dict[str, Histogram] = {}
        self._watched = _Watched()
        self.registry.register(self._watched)

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
        key = (label, record.door, record.verdict, record.outcome, record.reason)
        counted = self._decision_series.get(key)
        if counted is None:  # labels() validates and locks on every call: each series is looked up once
            counted = self._decision_series[key] = self.decisions.labels(*key)
        counted.inc()
        timed = self._latency_series.get(record.door)
        if timed is None:
            timed = self._latency_series[record.door] = self.latency.labels(record.door)
        timed.observe(latency_us / 1e6)
        if language_refused:
            self.language_fallbacks.labels(record.door).inc()

    def store_failed(self, op: str) -> None:
        self.store_errors.labels(op).inc()

    def watch_door(self, name: str, door: SessionServer) -> None:
        """Export ``door``'s sessions as ``door`` (agi, esl) from now on."""
        self._watched.doors[name] = door

    def watch_audit(self, audit: AuditSink) -> None:
        self._watched.audit = audit

    def watch_replica(self, replica: ReplicaStore) -> None:
        self._watched.replica = replica

    def watch_facts(self, producer: FactProducer, consumer: PartitionConsumer) -> None:
        """The shared early warning's (``transport = "redis"``): this gate's facts and this analyser's."""
        self._watched.facts = producer, consumer

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Watched(Collector):
    """The doors' sessions and the audit sink's backlog, read at each scrape."""

    def __init__(self) -> None:
        self.doors: dict[str, SessionServer] = {}
        self.audit: AuditSink | None = None
        self.replica: ReplicaStore | None = None
        self.facts: tuple[FactProducer, PartitionConsumer] | None = None

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("dncgate_door_up", "1 while the door accepts connections", labels=["door"])
        sessions = GaugeMetricFamily("dncgate_door_sessions", "Sessions open now", labels=["door"])
        accepted = CounterMetricFamily("dncgate_door_accepted", "Sessions accepted", labels=["door"])
        refused = CounterMetricFamily("dncgate_door_refused", "Connections refused, by reason",
                                      labels=["door", "reason"])
        for name, door in sorted(self.doors.items()):
            up.add_metric([name], float(door.serving))
            sessions.add_metric([name], door.active_sessions)
            accepted.add_metric([name], door.accepted)
            for reason, count in sorted(door.refused_by.items()):
                refused.add_metric([name, reason], count)
        found: list[Metric] = [up, sessions, accepted, refused]
        if self.audit is not None:
            backlog = GaugeMetricFamily("dncgate_audit_backlog",
                                        "Decisions queued for the durable audit, not written yet")
            backlog.add_metric([], self.audit.backlog)
            written = CounterMetricFamily("dncgate_audit_written", "Decisions written to the durable audit")
            written.add_metric([], self.audit.written)
            lost = CounterMetricFamily("dncgate_audit_unwritten",
                                       "Decisions the audit could not keep (queue full, or left at shutdown): "
                                       "each one is in an audit.overflow or audit.unwritten_at_shutdown log line")
            lost.add_metric([], self.audit.overflowed)
            found += [backlog, written, lost]
        if self.replica is not None:
            found += _replica_metrics(self.replica)
        if self.facts is not None:
            found += _facts_metrics(*self.facts)
        return found

    def describe(self) -> Iterable[Metric]:
        return []  # collected at each scrape only: the names are not fixed before the doors start


def _replica_metrics(replica: ReplicaStore) -> list[Metric]:
    answers = CounterMetricFamily("dncgate_replica_answers",
                                  "facts() by how they were answered: replica, round_trip, or static (the store "
                                  "down, from the replica; each one is in a replica.static_decision log line)",
                                  labels=["how"])
    for how, count in sorted(replica.answered.items()):
        answers.add_metric([how], count)
    age = GaugeMetricFamily("dncgate_replica_age_seconds",
                            "Since the replica's last complete read of the store's changes (-1: not loaded yet)")
    known = replica.replica_age()
    age.add_metric([], -1.0 if known is None else known)
    applied = CounterMetricFamily("dncgate_replica_changes_applied", "List edits and ledger records applied")
    applied.add_metric([], replica.changes_applied)
    return [answers, age, applied]


def _facts_metrics(producer: FactProducer, consumer: PartitionConsumer) -> list[Metric]:
    sent = CounterMetricFamily("dncgate_early_warning_facts_sent", "Call facts this gate sent to the shared streams")
    sent.add_metric([], producer.sent)
    dropped = CounterMetricFamily("dncgate_early_warning_facts_dropped",
                                  "Call facts this gate dropped (buffer full, Redis failing or late; in an "
                                  "early_warning.facts_dropped or facts_not_sent log line)")
    dropped.add_metric([], producer.dropped)
    applied = CounterMetricFamily("dncgate_early_warning_facts_applied",
                                  "Call facts this analyser counted, from every gate, for the partitions it held")
    applied.add_metric([], consumer.applied)
    trimmed = CounterMetricFamily("dncgate_early_warning_entries_trimmed_unread",
                                  "Stream entries of facts trimmed (maxlen) before this analyser's group read them: "
                                  "facts the early warning never counted (early_warning.entries_trimmed_unread)")
    trimmed.add_metric([], consumer.trimmed)
    held = GaugeMetricFamily("dncgate_early_warning_partitions_held", "Stream partitions this analyser holds now")
    held.add_metric([], len(consumer.held))
    return [sent, dropped, applied, trimmed, held]
