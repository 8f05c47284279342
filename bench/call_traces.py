"""A synthetic call trace: legitimate traffic and seeded campaigns, as the early warning sees it.

Two records per call, in time order: the gate's decision (an *attempt*: refused or not, service or
marketing, callee, caller ID) when the call is placed, and the switch's *end* (answered, billed
seconds) when it ends. The gate's verdicts are drawn, not looked up: a number dialled at random is
on the registry with probability ``LISTED`` (and a marketing call to it is refused), a scrubbed
call list is refused ``SCRUBBED_REFUSED`` of the time (numbers registered since the list was
cleaned).

Legitimate originators (``legit:*``):
- people (``person-N``): ~8 calls a day in their waking hours to ~30 contacts, 70 % answered, long calls;
- call centres (``centre-N``): 5-35 calls/min, 09:00-20:00, a scrubbed list, 35 % answered (a quarter of
  the answered hang up within 6 s), three caller IDs;
- banks (``bank-N``): service calls to their customers, 1-8/min, 08:00-20:00, 60 % answered.

Seeded campaigns (``camp:KIND-N``), each starting at a seeded time on the first day:
- ``random_block``: random numbers in one 10,000-number block, 12/min;
- ``sequential``: a block in numeric order, 20/min;
- ``short_blast``: 80/min to a scrubbed list, half answered, hung up within 1-5 s;
- ``cid_rotation``: 8/min on one trunk, a new caller ID for every call, a scrubbed list, ordinary durations;
- ``service_marketing``: marketing sent as "service" (the gate lets it through), 15/min, strangers who hang up;
- ``slow_midnight``: 3/min from 23:40 for 90 minutes, random numbers: under 1,000 a calendar day (a naive
  per-day cap), across midnight.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DAY = 86_400
START = 1_767_571_200  # Monday 2026-01-05 00:00 UTC
LISTED = 0.35
SCRUBBED_REFUSED = 0.01
TENANT = "carrier"
CAMPAIGNS = ("random_block", "sequential", "short_blast", "cid_rotation", "service_marketing", "slow_midnight")

# attempt: (0, (tenant, originator, at, callee, refused, allowed, service, caller_id, decision_id))
# end:     (1, (tenant, originator, at, answered, billsec, call_id)): the arguments of Analyser.attempt / .ended
Record = tuple[int, tuple[Any, ...]]


@dataclass
class Campaign:
    kind: str
    originator: str
    start: float


@dataclass
class _Caller:
    """One originator's way of calling, drawn per minute."""

    originator: str
    per_min: float
    open_h: tuple[int, int]
    answered: float
    short: float  # share of answered calls hung up within 6 s
    mean_s: float
    service: bool
    refused: float
    callees: list[int] | None  # a contact / customer list; None: a number space
    base: int
    caller_ids: tuple[str, ...]
    sequential: bool = False
    until: float = float("inf")
    since: float = 0.0
    rotate_cid: bool = False


class Trace:
    """The callers and campaigns of one seeded trace; ``records()`` yields its records in time order."""

    def __init__(self, seed: int = 12, people: int = 20_000, centres: int = 150, banks: int = 100,
                 per_campaign: int = 20) -> None:
        self.rng = rng = random.Random(seed)
        self.callers: list[_Caller] = []
        self.people: list[_Caller] = []
        for n in range(people):
            contacts = [8613000000000 + rng.randrange(10**9) for _ in range(30)]
            self.people.append(_Caller(f"person-{n}", 8 / (14 * 60), (8, 22), 0.7, 0.03, 180.0, True, 0.0,
                                       contacts, 0, (f"+86139{n:08d}",)))
        for n in range(centres):
            self.callers.append(_Caller(
                f"centre-{n}", rng.uniform(5, 35), (9, 20), 0.35, 0.25, 90.0, False, SCRUBBED_REFUSED, None,
                8613000000000 + rng.randrange(10**9), tuple(f"+86105{n:04d}{i:03d}" for i in range(3))))
        for n in range(banks):
            customers = [8613000000000 + rng.randrange(10**9) for _ in range(20_000)]
            self.callers.append(_Caller(f"bank-{n}", rng.uniform(1, 8), (8, 20), 0.6, 0.1, 120.0, True, 0.0,
                                        customers, 0, (f"+86955{n:05d}",)))
        self.legit = [c.originator for c in self.people] + [c.originator for c in self.callers]
        self.campaigns: list[Campaign] = []
        for kind in CAMPAIGNS:
            for n in range(per_campaign):
                self._campaign(kind, n)

    def _campaign(self, kind: str, n: int) -> None:
        rng = self.rng
        start = START + 23 * 3600 + 40 * 60 + n * 7 if kind == "slow_midnight" else \
            START + rng.uniform(1, 22) * 3600
        block = 8613000000000 + rng.randrange(10**5) * 10_000
        name = f"camp:{kind}-{n}"
        minutes = 90 if kind == "slow_midnight" else 120
        spec = {
            "random_block": dict(per_min=12, answered=0.15, short=0.4, mean_s=15.0, service=False, refused=LISTED),
            "sequential": dict(per_min=20, answered=0.2, short=0.3, mean_s=25.0, service=False, refused=LISTED,
                               sequential=True),
            "short_blast": dict(per_min=80, answered=0.5, short=1.0, mean_s=3.0, service=False,
                                refused=SCRUBBED_REFUSED),
            "cid_rotation": dict(per_min=8, answered=0.3, short=0.2, mean_s=60.0, service=False,
                                 refused=SCRUBBED_REFUSED, rotate_cid=True),
            "service_marketing": dict(per_min=15, answered=0.3, short=0.7, mean_s=8.0, service=True, refused=0.0),
            "slow_midnight": dict(per_min=3, answered=0.15, short=0.4, mean_s=15.0, service=False, refused=LISTED),
        }[kind]
        self.callers.append(_Caller(name, open_h=(0, 24), callees=None, base=block,
                                    caller_ids=(f"+86177{rng.randrange(10**8):08d}",), since=start,
                                    until=start + minutes * 60, **spec))  # type: ignore[arg-type]
        self.campaigns.append(Campaign(kind, name, start))

    def records(self, days: float = 2.0) -> Iterator[list[Record]]:
        """Each simulated minute's records (attempts, and the ends that fall in it), in time order."""
        rng = self.rng
        ends: list[tuple[float, int, Record]] = []
        person_calls = self._people_calls(days)
        serial = 0
        for minute in range(int(days * 1440)):
            at0 = START + minute * 60
            hour = (minute // 60) % 24
            calls: list[tuple[float, _Caller]] = person_calls.get(minute, [])
            for caller in self.callers:
                if not caller.since <= at0 < caller.until or not caller.open_h[0] <= hour < caller.open_h[1]:
                    continue
                count = _poisson(rng, caller.per_min)
                calls.extend((at0 + rng.random() * 60, caller) for _ in range(count))
            calls.sort(key=lambda c: c[0])
            out: list[Record] = []
            for at, caller in calls:
                while ends and ends[0][0] <= at:
                    out.append(heapq.heappop(ends)[2])
                serial += 1
                out.append(self._attempt(caller, at, serial, ends))
            while ends and ends[0][0] < at0 + 60:
                out.append(heapq.heappop(ends)[2])
            yield out

    def _attempt(self, caller: _Caller, at: float, serial: int, ends: list[tuple[float, int, Record]]) -> Record:
        rng = self.rng
        if caller.callees is not None:
            callee = caller.callees[int(rng.random() * len(caller.callees))]
        elif caller.sequential:
            caller.base += 1
            callee = caller.base
        else:
            callee = caller.base + int(rng.random() * 10_000)
        refused = rng.random() < caller.refused
        caller_id = f"+86177{serial:08d}" if caller.rotate_cid else caller.caller_ids[serial % len(caller.caller_ids)]
        answered = not refused and rng.random() < caller.answered
        if not answered:
            billsec, end = 0.0, at + (1.0 if refused else rng.uniform(5, 30))
        else:
            billsec = rng.uniform(1, 5.9) if rng.random() < caller.short else rng.expovariate(1 / caller.mean_s) + 6
            end = at + rng.uniform(3, 15) + billsec
        call_id = str(serial)
        heapq.heappush(ends, (end, serial, (1, (TENANT, caller.originator, end, answered, billsec, call_id))))
        return 0, (TENANT, caller.originator, at, callee, refused, not refused, caller.service, caller_id, call_id)

    def _people_calls(self, days: float) -> dict[int, list[tuple[float, _Caller]]]:
        rng = self.rng
        by_minute: dict[int, list[tuple[float, _Caller]]] = {}
        for day in range(int(days + 0.999)):
            for person in self.people:
                for _ in range(_poisson(rng, 8.0)):
                    minute = day * 1440 + rng.randrange(8 * 60, 22 * 60)
                    by_minute.setdefault(minute, []).append((START + minute * 60 + rng.random() * 60, person))
        return by_minute


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; means here are at most ~100)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, int(rng.gauss(mean, mean ** 0.5) + 0.5))
    limit, count, product = 2.718281828459045 ** -mean, 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
