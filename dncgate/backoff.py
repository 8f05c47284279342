"""Reconnect delays shared by every client that reconnects (AMI, the event socket inbound feed)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol


class BackoffPolicy(Protocol):
    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0-based)."""
        ...


@dataclass(slots=True)
class ExponentialBackoff:
    """``initial * factor**attempt``, capped at ``maximum``, with +/- ``jitter`` (a fraction)."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return max(0.0, base * (1.0 + self.rng.uniform(-self.jitter, self.jitter)))
