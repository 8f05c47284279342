"""Prometheus metrics of list sync and freshness, on the gate's registry."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dncgate.lists.freshness import ListFreshness
from dncgate.lists.sync import SyncReport


class SyncMetrics:
    """Implements ``lists.sync.SyncObserver``; ``watch()`` exports a list's age and staleness."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sequence = Gauge("dncgate_list_sequence", "Last applied sequence (snapshot or delta) of a synced list",
                              ("list",), registry=registry)
        self.size = Gauge("dncgate_list_numbers", "Numbers on the list (after a sync, or as the store last said)",
                          ("list",), registry=registry)
        self.last_success = Gauge("dncgate_sync_last_success_timestamp_seconds",
                                  "Unix time of the last successful sync", ("list",), registry=registry)
        self.failures = Counter("dncgate_sync_failures", "Failed syncs by cause", ("list", "cause"), registry=registry)
        self.registry = registry
        self.stale = Gauge("dncgate_list_stale", "1 when the list is older than the tenant's maximum age (alarm)",
                           ("list", "tenant"), registry=registry)

    def succeeded(self, list_name: str, report: SyncReport, count: int | None) -> None:
        if report.sequence is not None:
            self.sequence.labels(list_name).set(report.sequence)
        if count is not None:
            self.size.labels(list_name).set(count)
        self.last_success.labels(list_name).set(time.time())

    def failed(self, list_name: str, cause: str) -> None:
        self.failures.labels(list_name, cause).inc()

    def counted(self, counts: Mapping[str, int]) -> None:
        """Every loaded list's size, as ``ListFreshness`` read it (a ``lists load`` by the CLI included)."""
        for list_name, count in counts.items():
            self.size.labels(list_name).set(count)

    def watch(self, freshness: ListFreshness) -> None:
        freshness.on_counts = self.counted
        self.counted(freshness.counts)
        self.registry.register(_ListPresence(freshness))
        for tenant in freshness.tenants:
            self.stale.labels(freshness.list_name, tenant).set_function(
                lambda tenant=tenant: float(tenant in freshness.stale_tenants))  # type: ignore[misc]


class _ListPresence(Collector):
    """``dncgate_list_age_seconds`` (only while the age is known: never NaN) and, for every list a
    tenant needs, ``dncgate_list_missing`` (1 while it has no live version), read at each scrape."""

    def __init__(self, freshness: ListFreshness) -> None:
        self.freshness = freshness

    def collect(self) -> Iterable[Metric]:
        freshness = self.freshness
        age = GaugeMetricFamily("dncgate_list_age_seconds",
                                "Age of the list: time since a sync last confirmed it current (absent: unknown, "
                                "never loaded)", labels=["list"])
        value = freshness.age()
        if value is not None:
            age.add_metric([freshness.list_name], value.total_seconds())
        missing = GaugeMetricFamily("dncgate_list_missing",
                                    "1 while the list has no live version (a list some tenant needs: its "
                                    "marketing calls are decided list_missing; or the synced list)", labels=["list"])
        for name in sorted(set(freshness.required) | {freshness.list_name}):
            missing.add_metric([name], float(name in freshness.missing or
                                             (name == freshness.list_name and name not in freshness.counts)))
        return [age, missing]

    def describe(self) -> Iterable[Metric]:
        return []  # collected at each scrape only
