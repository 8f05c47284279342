"""The gate's running state for the overview, read from the objects ``serve`` runs and its metrics
registry when a page asks: the doors, the audit sink's backlog, the decision latency histogram and
the sync failure counter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry


class ServingDoor(Protocol):
    @property
    def serving(self) -> bool: ...


class Backlog(Protocol):
    @property
    def backlog(self) -> int: ...


@dataclass
class GateHealth:
    registry: CollectorRegistry
    audit: Backlog
    door_objects: dict[str, ServingDoor | None] = field(default_factory=dict)  # None: configured off

    def doors(self) -> Mapping[str, bool]:
        return {name: door is not None and door.serving for name, door in self.door_objects.items()}

    def audit_backlog(self) -> int:
        return self.audit.backlog

    def latency_quantiles(self) -> tuple[float | None, float | None]:
        buckets: dict[float, float] = {}
        for metric in self.registry.collect():
            if metric.name != "dncgate_decision_seconds":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
        return quantile(buckets, 0.5), quantile(buckets, 0.99)

    def sync_failures(self) -> Mapping[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for metric in self.registry.collect():
            if metric.name == "dncgate_sync_failures":
                for sample in metric.samples:
                    if sample.name.endswith("_total") and sample.value:
                        found[(sample.labels["list"], sample.labels["cause"])] = int(sample.value)
        return found


def quantile(cumulative: Mapping[float, float], q: float) -> float | None:
    """The upper bound (ms) of the histogram bucket holding the ``q`` quantile (None: no observations)."""
    total = cumulative.get(float("inf"), 0.0)
    if not total:
        return None
    for bound in sorted(cumulative):
        if cumulative[bound] >= q * total:
            return bound * 1000 if bound != float("inf") else None
    return None
