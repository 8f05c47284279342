"""Prometheus metrics of list sync and freshness, on the gate's registry."""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

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
        self.age = Gauge("dncgate_list_age_seconds", "Age of the list: time since a sync last confirmed it current",
                         ("list",), registry=registry)
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
        def age() -> float:
            value = freshness.age()
            return float("nan") if value is None else value.total_seconds()

        self.age.labels(freshness.list_name).set_function(age)
        for tenant in freshness.tenants:
            self.stale.labels(freshness.list_name, tenant).set_function(
                lambda tenant=tenant: float(tenant in freshness.stale_tenants))  # type: ignore[misc]
