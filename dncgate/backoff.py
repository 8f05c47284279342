"""The one backoff: the wait before a retry, for everything that retries.

AMI and the event-socket feed reconnect with ``Backoff()`` (0.5 s doubling to 30 s, +/- 20 %);
the ledger-to-outbox forwarder waits ``Backoff(initial=interval, maximum=300)`` after failures;
the registration outbox retries a push after 2 s doubling to an hour, with ``EQUAL_JITTER`` (half
to all of the delay). A caller counts its own attempts and decides when to
give up; the randomness is an injectable ``random.Random``, so tests draw known delays.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["EQUAL_JITTER", "Backoff", "BackoffPolicy", "Jitter"]

# A +/- fraction of the delay (0.2: 80 % to 120 %), or the (low, high) range of its multiplier.
Jitter = float | tuple[float, float]
EQUAL_JITTER = (0.5, 1.0)  # half the delay, plus up to the other half at random


class BackoffPolicy(Protocol):
    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based: 0 is the first retry)."""
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial * factor**attempt``, capped at ``maximum``, times a random multiplier (``jitter``)."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: Jitter = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        low, high = self.multipliers
        return max(0.0, base * self.rng.uniform(low, high))

    @property
    def multipliers(self) -> tuple[float, float]:
        """The range the random multiplier of each delay is drawn from."""
        if isinstance(self.jitter, tuple):
            return self.jitter
        return 1.0 - self.jitter, 1.0 + self.jitter
