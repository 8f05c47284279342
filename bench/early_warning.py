"""The early warning against a synthetic trace (bench/call_traces.py): detection, false alarms, speed, memory.

Replays ``--records`` call records (default 10 million: ~2 simulated days of a carrier with 20,000
people, 150 call centres, 100 banks and 120 seeded campaigns) through the analyser with the
default rules, and beside it, on the same records, a naive detector of the kind carriers run
today (OpenSIPS fraud_detection-like: calls per fixed minute >= 120 and calls per calendar day >=
1,000, both reset when their minute or day ends). Prints, per campaign kind, the time from the
campaign's first call to its first enforcing alert (report-only rules do not count), overall
recall, the share of legitimate originators flagged, records/s of each detector (the replay loop
alone: generating the trace is timed apart), peak RSS and the analyser's bytes per originator.
Targets (issue 12): detected within 5 simulated minutes, recall >= 95 %, <= 0.1 % legitimate
flagged, >= 50,000 records/s, bounded memory. Not a test: it asserts nothing.

    .venv/bin/python bench/early_warning.py [--records 10000000]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))

from call_traces import CAMPAIGNS, DAY, TENANT, Record, Trace

from dncgate.early_warning import rules as r
from dncgate.early_warning.alerts import Alert
from dncgate.early_warning.analyser import Analyser, Watch
from dncgate.early_warning.windows import Windows

TARGET_S = 300.0
# the default rules before issue 12's 5-minute fix (the "before" column): refused at 10 attempts,
# service_as_marketing at 0.55 over 12 answered, no night_burst
_CHANGED = {"refused": r.Rule("refused", r.Feature.REFUSED, warning=0.2, critical=0.3, min_attempts=10),
            "service_as_marketing": r.Rule("service_as_marketing", r.Feature.SERVICE_SHORT, warning=0.55,
                                           critical=0.65, min_attempts=12)}
BEFORE_RULES = tuple(_CHANGED.get(rule.name, rule) for rule in r.DEFAULT_RULES if rule.name != "night_burst")


class NaiveDetector:
    """Per originator: calls in the current clock minute and the current calendar day, reset at each."""

    def __init__(self, per_minute: int = 120, per_day: int = 1000) -> None:
        self.per_minute, self.per_day = per_minute, per_day
        self.minute: dict[str, tuple[int, int]] = {}
        self.day: dict[str, tuple[int, int]] = {}
        self.flagged: dict[str, float] = {}

    def attempt(self, originator: str, at: float) -> None:
        minute, day = int(at) // 60, int(at) // DAY
        m_slot, m_count = self.minute.get(originator, (minute, 0))
        d_slot, d_count = self.day.get(originator, (day, 0))
        m_count = m_count + 1 if m_slot == minute else 1
        d_count = d_count + 1 if d_slot == day else 1
        self.minute[originator], self.day[originator] = (minute, m_count), (day, d_count)
        if (m_count >= self.per_minute or d_count >= self.per_day) and originator not in self.flagged:
            self.flagged[originator] = at


def _bytes_per_originator(rules: int) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [Windows(1_767_571_200, rules) for _ in range(1000)]
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del kept
    return used / 1000


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # alerts: counted
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    started = time.perf_counter()
    trace = Trace(seed=args.seed)
    setup_s = time.perf_counter() - started
    first: dict[str, Alert] = {}
    flagged_any: set[str] = set()

    def on_alert(alert: Alert) -> None:
        if not alert.report_only:
            first.setdefault(alert.originator.value, alert)
        flagged_any.add(alert.originator.value)

    analyser = Analyser({TENANT: Watch(TENANT)}, on_alert=on_alert)
    before_first: dict[str, Alert] = {}

    def on_before(alert: Alert) -> None:
        if not alert.report_only:
            before_first.setdefault(alert.originator.value, alert)

    before = Analyser({TENANT: Watch(TENANT, rules=BEFORE_RULES)}, on_alert=on_before)
    before_s = 0.0
    naive = NaiveDetector()
    replayed = 0
    analyser_s = naive_s = generate_s = analyser_cpu = 0.0
    day_counts: dict[tuple[str, int], int] = defaultdict(int)
    slow = {c.originator for c in trace.campaigns if c.kind == "slow_midnight"}
    attempt, ended = analyser.attempt, analyser.ended
    mark = time.perf_counter()
    for chunk in trace.records(days=4.0):
        chunk = chunk[: args.records - replayed]
        now = time.perf_counter()
        generate_s += now - mark
        cpu = time.process_time()
        _replay(chunk, attempt, ended)
        mark = time.perf_counter()
        analyser_cpu += time.process_time() - cpu
        analyser_s += mark - now
        _replay(chunk, before.attempt, before.ended)
        now = time.perf_counter()
        before_s += now - mark
        mark = now
        for kind, fact in chunk:
            if kind == 0:
                naive.attempt(fact[1], fact[2])
        now = time.perf_counter()
        naive_s += now - mark
        for kind, fact in chunk:
            if kind == 0 and fact[1] in slow:
                day_counts[(fact[1], int(fact[2]) // DAY)] += 1
        replayed += len(chunk)
        mark = time.perf_counter()
        if replayed >= args.records:
            break
    _report(trace, first, naive, replayed, (analyser_s, analyser_cpu), naive_s, generate_s + setup_s, analyser,
            day_counts)
    _side_by_side(trace, before_first, first, replayed / before_s, replayed / analyser_s)


def _side_by_side(trace: Trace, before: dict[str, Alert], after: dict[str, Alert], before_rate: float,
                  after_rate: float) -> None:
    print(f"before / after (same records): {'campaign':<18} | {'before <=5min':>13} {'max':>6} |"
          f" {'after <=5min':>12} {'max':>6}")
    totals = [0, 0]
    for kind in CAMPAIGNS:
        campaigns = [c for c in trace.campaigns if c.kind == kind]
        row = []
        for index, first in enumerate((before, after)):
            ttds = [first[c.originator].raised_at.timestamp() - c.start for c in campaigns if c.originator in first]
            within = sum(1 for t in ttds if t <= TARGET_S)
            totals[index] += within
            row.append(f"{f'{within}/{len(campaigns)}':>13} {_max(ttds):>6}")
        print(f"{'':<31}{kind:<18} | {row[0]} | {row[1]}")
    legit = trace.legit
    flagged = [sum(1 for o in legit if o in first) for first in (before, after)]
    total = len(trace.campaigns)
    print(f"{'':<31}{'recall <=5min':<18} | {totals[0] / total:>13.1%} {'':>6} | {totals[1] / total:>12.1%}")
    print(f"{'':<31}{'legit flagged':<18} | {flagged[0] / len(legit):>13.3%} {'':>6} | "
          f"{flagged[1] / len(legit):>12.3%}")
    print(f"{'':<31}{'records/s wall':<18} | {before_rate:>13,.0f} {'':>6} | {after_rate:>12,.0f}")


def _replay(chunk: list[Record], attempt: object, ended: object) -> None:
    for kind, fact in chunk:
        if kind == 0:
            attempt(*fact)  # type: ignore[operator]
        else:
            ended(*fact)  # type: ignore[operator]


def _report(trace: Trace, first: dict[str, Alert], naive: NaiveDetector, replayed: int, timing: tuple[float, float],
            naive_s: float, generate_s: float, analyser: Analyser, day_counts: dict[tuple[str, int], int]) -> None:
    print(f"records replayed: {replayed:,} (trace generated in {generate_s:.1f} s, not counted below)")
    print(f"{'campaign':<18} {'n':>3} | {'dncgate: found':>14} {'TTD p50':>8} {'TTD max':>8} {'rules (first)':<28} |"
          f" {'naive: found':>12} {'TTD p50':>8}")
    found = total = 0
    for kind in CAMPAIGNS:
        ours: list[float] = []
        theirs: list[float] = []
        rules: dict[str, int] = defaultdict(int)
        campaigns = [c for c in trace.campaigns if c.kind == kind]
        for campaign in campaigns:
            alert = first.get(campaign.originator)
            if alert is not None:
                ttd = alert.raised_at.timestamp() - campaign.start
                ours.append(ttd)
                rules[alert.rule] += 1
            if campaign.originator in naive.flagged:
                theirs.append(naive.flagged[campaign.originator] - campaign.start)
        within = sum(1 for t in ours if t <= TARGET_S)
        found += within
        total += len(campaigns)
        top = ", ".join(f"{k} {v}" for k, v in sorted(rules.items(), key=lambda kv: -kv[1])[:2])
        print(f"{kind:<18} {len(campaigns):>3} | {f'{within}/{len(campaigns)} <=5min':>14} {_p50(ours):>8} "
              f"{_max(ours):>8} {top:<28} | {f'{len(theirs)}/{len(campaigns)}':>12} {_p50(theirs):>8}")
    legit = trace.legit
    flagged = [o for o in legit if o in first]
    naive_flagged = [o for o in legit if o in naive.flagged]
    print(f"recall (within 5 simulated min): dncgate {found / total:.1%} | naive "
          f"{sum(1 for c in trace.campaigns if c.originator in naive.flagged) / total:.1%} (any time)")
    print(f"legitimate originators flagged: dncgate {len(flagged)}/{len(legit)} = {len(flagged) / len(legit):.3%}"
          f" | naive {len(naive_flagged)}/{len(legit)} = {len(naive_flagged) / len(legit):.3%}")
    if flagged:
        print("  flagged:", ", ".join(f"{o} ({first[o].rule})" for o in flagged[:10]))
    slow_max = max((v for (o, _), v in day_counts.items()), default=0)
    print(f"slow campaign across midnight: at most {slow_max} calls in a calendar day (naive cap 1,000)")
    wall, cpu = timing
    print(f"records/s: dncgate {replayed / wall:,.0f} wall, {replayed / cpu:,.0f} per CPU second (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs) | naive {replayed / naive_s:,.0f} wall")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per = _bytes_per_originator(len(analyser.watch(TENANT).rules))  # type: ignore[union-attr]
    print(f"peak RSS {rss_mb:,.0f} MB (trace generator included); originators kept {analyser.originators():,}, "
          f"{per:,.0f} bytes each ({analyser.originators() * per / 2**20:,.0f} MB), bound "
          f"{analyser.max_originators:,}; alerts {analyser.alerts:,}")


def _p50(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}s" if values else "-"


def _max(values: list[float]) -> str:
    return f"{max(values):.0f}s" if values else "-"


if __name__ == "__main__":
    main()
