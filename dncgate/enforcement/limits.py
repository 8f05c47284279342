"""The caps on a restricted originator's marketing calls: calls in the last minute, calls in progress.

Counted in process, per gate, and why: the store's one round trip already carries the caps (the
standing set), and a count in the store would need a write on every call of a restricted
originator (Redis INCR, a SQLite write transaction on the call's path) and, for concurrency, a
decrement on every hangup from the call feeds into the store. A gate sees its own calls; with N
gates behind one balancer an originator gets up to N times the cap (divide the caps by N, or pin
an account's calls to one gate). Counted from the call's admission; a call in progress is released
by its call record (``release``: the AMI/ESL feeds) or after ``max_hold`` seconds, whichever comes
first. The minute is a sliding window (no reset at a minute boundary).

Bounded: at most ``max_originators`` tracked (least recently used dropped) and, per originator, at
most its cap of timestamps in each window.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from dncgate.model import Restriction

WINDOW = 60.0


@dataclass(slots=True)
class _Counts:
    admitted: deque[float] = field(default_factory=deque)  # admission times within the window
    live: deque[float] = field(default_factory=deque)  # admission times of calls not yet released


class RestrictionCounter:
    def __init__(self, *, max_originators: int = 100_000, max_hold: float = 3600.0) -> None:
        self._counts: OrderedDict[str, _Counts] = OrderedDict()
        self._max = max_originators
        self.max_hold = max_hold

    def _of(self, key: str, now: float) -> _Counts:
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = _Counts()
            while len(self._counts) > self._max:
                self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(key)
        while counts.admitted and counts.admitted[0] <= now - WINDOW:
            counts.admitted.popleft()
        while counts.live and counts.live[0] <= now - self.max_hold:
            counts.live.popleft()
        return counts

    def over(self, restriction: Restriction, now: float) -> str | None:
        """Why a call now would be over the caps (None: within them)."""
        counts = self._of(restriction.originator, now)
        if restriction.per_minute and len(counts.admitted) >= restriction.per_minute:
            return f"{len(counts.admitted)} calls in the last minute, cap {restriction.per_minute}"
        if restriction.concurrent and len(counts.live) >= restriction.concurrent:
            return f"{len(counts.live)} calls in progress, cap {restriction.concurrent}"
        return None

    def admit(self, restriction: Restriction, now: float) -> None:
        counts = self._of(restriction.originator, now)
        counts.admitted.append(now)
        counts.live.append(now)
        cap = max(restriction.per_minute, restriction.concurrent, 1)
        while len(counts.admitted) > cap:
            counts.admitted.popleft()
        while len(counts.live) > cap:
            counts.live.popleft()

    def release(self, key: str) -> None:
        """A call of ``key`` (``account:X``) ended: one call in progress fewer."""
        counts = self._counts.get(key)
        if counts is not None and counts.live:
            counts.live.popleft()

    def __len__(self) -> int:
        return len(self._counts)
