"""The features an originator's windows give, and the rules that turn them into alert levels.

A rule names one feature, a warning and a critical threshold (crossed upwards, or downwards for a
``below`` rule such as a minimum answer-seizure ratio), the volume below which its ratio means
nothing (``min_attempts`` in the feature's window), the local hours and weekdays it applies in, and
whether it only reports. The default rules (:data:`DEFAULT_RULES`) and where each threshold comes
from are listed in the README ("Early warning"); a tenant's ``[early_warning.tenants.NAME.rules]``
replace or add to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from dncgate.early_warning import windows as w
from dncgate.early_warning.alerts import Severity
from dncgate.early_warning.windows import Windows


class Feature(StrEnum):
    ATTEMPTS_PER_MIN = "attempts_per_min"
    CONCURRENT = "concurrent"
    ASR = "asr"  # answered / ended calls
    ACD = "acd_s"  # average answered duration
    SHORT6 = "short6_share"  # answered calls under 6 s / answered
    SHORT30 = "short30_share"
    DISTINCT_RATIO = "distinct_ratio"  # distinct callees / attempts
    SEQUENTIAL = "sequential_share"  # attempts to the previous callee + 1..3
    REFUSED = "refused_share"  # attempts the gate refused (lists, consent, hours, declined)
    NIGHT = "night_share"
    COMPLAINTS = "complaints_per_1000"
    CALLER_IDS = "caller_ids"  # distinct caller IDs the originator used
    SERVICE_SHORT = "service_short_share"  # short6_share of an originator calling >= 80 % "service"
    SURGE = "surge"  # 24 h attempts / the baseline's day


WINDOW = {
    Feature.ATTEMPTS_PER_MIN: "1m", Feature.CONCURRENT: "1m", Feature.NIGHT: "24h", Feature.COMPLAINTS: "24h",
    Feature.SURGE: "baseline",
}  # every other feature: "1h"
SERVICE_SHARE = 0.8  # an originator whose attempts are at least this share service-purpose is a service caller
MIN_EVALUATED = 10  # an originator with fewer attempts in its hour (and day / 5) is not evaluated (or fewer
# than the smallest min_attempts of its tenant's rules, if that is smaller)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    feature: Feature
    warning: float | None = None
    critical: float | None = None
    below: bool = False  # crossed downwards (a minimum ratio or duration)
    min_attempts: int = 0  # in the feature's window (answered calls for asr and acd_s)
    hours: tuple[int, int] | None = None  # local minutes of the day [start, end) it applies in; None: always
    weekdays: frozenset[int] | None = None  # 0 = Monday; None: every day
    report_only: bool = False

    @property
    def window(self) -> str:
        return WINDOW.get(self.feature, "1h")

    def applies(self, minute_of_day: int, weekday: int) -> bool:
        if self.weekdays is not None and weekday not in self.weekdays:
            return False
        if self.hours is None:
            return True
        start, end = self.hours
        return start <= minute_of_day < end if start <= end else (minute_of_day >= start or minute_of_day < end)

    def level(self, value: float) -> int:
        """0 (under), 1 (warning) or 2 (critical)."""
        for threshold, level in ((self.critical, 2), (self.warning, 1)):
            if threshold is not None and (value <= threshold if self.below else value >= threshold):
                return level
        return 0

    def threshold(self, level: int) -> float:
        value = self.critical if level == 2 else self.warning
        return 0.0 if value is None else value


SEVERITY = {1: Severity.WARNING, 2: Severity.CRITICAL}

# Every default with its reason and source: README "Early warning" repeats them in a table.
DEFAULT_RULES: tuple[Rule, ...] = (
    # OpenSIPS fraud_detection's calls per minute, without its midnight reset; above a predictive
    # dialler's pace per account (a person dials < 2 a minute)
    Rule("attempts_per_min", Feature.ATTEMPTS_PER_MIN, warning=120, critical=300),
    # OpenSIPS fraud_detection's concurrent calls
    Rule("concurrent", Feature.CONCURRENT, warning=60, critical=150),
    # 46 Labs' maximum short-call ratio; Chinese carriers' "ultra-short calls"
    Rule("short_calls", Feature.SHORT6, warning=0.55, critical=0.7, min_attempts=40),
    Rule("under_30s", Feature.SHORT30, warning=0.85, critical=0.95, min_attempts=50),
    # 46 Labs' minimum answer-seizure ratio (a call centre answers 20-50 %)
    Rule("low_asr", Feature.ASR, warning=0.08, critical=0.04, below=True, min_attempts=100),
    # 46 Labs' minimum average duration (2016 study: harassing calls average 29 s)
    Rule("low_acd", Feature.ACD, warning=15.0, critical=8.0, below=True, min_attempts=50),
    # a caller that scrubs its lists is refused a few per cent at most; random dialling meets the
    # registry's share of listed numbers
    Rule("refused", Feature.REFUSED, warning=0.2, critical=0.3, min_attempts=6),
    # dialling a number block in order
    Rule("sequential", Feature.SEQUENTIAL, warning=0.3, critical=0.5, min_attempts=15),
    # 2016 study: ~328 calls to ~255 people; alone it also fits a call centre: report only
    Rule("distinct_callees", Feature.DISTINCT_RATIO, warning=0.95, min_attempts=300, report_only=True),
    # caller-ID rotation on one trunk (a call centre shows a handful of numbers)
    Rule("caller_id_rotation", Feature.CALLER_IDS, warning=8, critical=15, min_attempts=10),
    # marketing outside the callee's day (TCPA 8:00-21:00); a person's night calls are few
    Rule("night_calls", Feature.NIGHT, warning=0.3, critical=0.5, min_attempts=50),
    # a burst that is nearly all night from its start (a person's night calls are a few of a day's;
    # warning only: it restricts, it does not suspend)
    Rule("night_burst", Feature.NIGHT, warning=0.8, min_attempts=8),
    # complaints per 1,000 calls over a day (Ofcom persistent misuse takes 3 % abandoned as its bar)
    Rule("complaints", Feature.COMPLAINTS, warning=2.0, critical=5.0, min_attempts=100),
    # service-purpose traffic answered like marketing (strangers hang up)
    Rule("service_as_marketing", Feature.SERVICE_SHORT, warning=0.5, critical=0.65, min_attempts=8),
    # TransNexus ClearIP: counts against weeks of history, run report-only before blocking
    Rule("surge", Feature.SURGE, warning=5.0, critical=10.0, min_attempts=200, report_only=True),
)


# what a rule's ``min_attempts`` counts: index into ``volumes()``
V_1M, V_ATTEMPTS, V_ENDED, V_ANSWERED, V_DAY = range(5)
VOLUME = {Feature.ATTEMPTS_PER_MIN: V_1M, Feature.CONCURRENT: V_1M, Feature.ASR: V_ENDED, Feature.ACD: V_ANSWERED,
          Feature.SHORT6: V_ANSWERED, Feature.SHORT30: V_ANSWERED, Feature.SERVICE_SHORT: V_ANSWERED,
          Feature.NIGHT: V_DAY, Feature.COMPLAINTS: V_DAY, Feature.SURGE: V_DAY}  # every other: V_ATTEMPTS


def volumes(state: Windows) -> tuple[int, int, int, int, int]:
    hour, acc = state.sum_1h, state.acc_1h
    return (state.sum_1m, hour[w.H_ATTEMPTS] + acc[w.H_ATTEMPTS], hour[w.H_ENDED] + acc[w.H_ENDED],
            hour[w.H_ANSWERED] + acc[w.H_ANSWERED], state.day(w.D_ATTEMPTS))


def value(state: Windows, feature: Feature) -> float:
    """One feature of ``state`` now (the rules ask for the ones whose volume is enough)."""
    return float(_CHEAP[feature](state))


def figures(state: Windows) -> dict[str, float]:
    """Every feature of ``state`` now: an alert's evidence."""
    attempts = state.hour(w.H_ATTEMPTS)
    ended, answered = state.hour(w.H_ENDED), state.hour(w.H_ANSWERED)
    day = state.day(w.D_ATTEMPTS)
    short6 = state.hour(w.H_SHORT6) / answered if answered else 0.0
    service = state.hour(w.H_SERVICE) / attempts if attempts else 0.0
    return {
        Feature.ATTEMPTS_PER_MIN: float(state.sum_1m),
        Feature.CONCURRENT: float(max(state.peak, state.in_progress)),
        Feature.ASR: answered / ended if ended else 1.0,
        Feature.ACD: state.hour(w.H_ANSWERED_S) / answered if answered else 0.0,
        Feature.SHORT6: short6,
        Feature.SHORT30: state.hour(w.H_SHORT30) / answered if answered else 0.0,
        Feature.DISTINCT_RATIO: _distinct_ratio(state, attempts),
        Feature.SEQUENTIAL: state.hour(w.H_SEQUENTIAL) / attempts if attempts else 0.0,
        Feature.REFUSED: state.hour(w.H_REFUSED) / attempts if attempts else 0.0,
        Feature.NIGHT: state.day(w.D_NIGHT) / day if day else 0.0,
        Feature.COMPLAINTS: 1000.0 * state.day(w.D_COMPLAINTS) / day if day else 0.0,
        Feature.CALLER_IDS: _caller_ids(state),
        Feature.SERVICE_SHORT: short6 if service >= SERVICE_SHARE else 0.0,
        Feature.SURGE: state.surge(),
        "attempts_1h": float(attempts),
        "attempts_24h": float(day),
        "ended_1h": float(ended),
        "answered_1h": float(answered),
    }


def _distinct_ratio(state: Windows, attempts: int) -> float:
    return min(state.distinct_callees() / attempts, 1.0) if attempts else 0.0


def _caller_ids(state: Windows) -> float:
    return round(state.distinct_caller_ids(), 1)


def _ratio(state: Windows, top: int, bottom: int) -> float:
    below = state.sum_1h[bottom] + state.acc_1h[bottom]
    return (state.sum_1h[top] + state.acc_1h[top]) / below if below else 0.0


_CHEAP: dict[Feature, Callable[[Windows], float]] = {
    Feature.ATTEMPTS_PER_MIN: lambda s: float(s.sum_1m),
    Feature.CONCURRENT: lambda s: float(max(s.peak, s.in_progress)),
    Feature.SHORT6: lambda s: _ratio(s, w.H_SHORT6, w.H_ANSWERED),
    Feature.SHORT30: lambda s: _ratio(s, w.H_SHORT30, w.H_ANSWERED),
    Feature.SEQUENTIAL: lambda s: _ratio(s, w.H_SEQUENTIAL, w.H_ATTEMPTS),
    Feature.REFUSED: lambda s: _ratio(s, w.H_REFUSED, w.H_ATTEMPTS),
    Feature.ACD: lambda s: _ratio(s, w.H_ANSWERED_S, w.H_ANSWERED),
    Feature.CALLER_IDS: _caller_ids,
    Feature.DISTINCT_RATIO: lambda s: _distinct_ratio(s, s.hour(w.H_ATTEMPTS)),
    Feature.ASR: lambda s: _ratio(s, w.H_ANSWERED, w.H_ENDED) if s.hour(w.H_ENDED) else 1.0,
    Feature.NIGHT: lambda s: s.day(w.D_NIGHT) / s.day(w.D_ATTEMPTS) if s.day(w.D_ATTEMPTS) else 0.0,
    Feature.COMPLAINTS: lambda s: 1000.0 * s.day(w.D_COMPLAINTS) / s.day(w.D_ATTEMPTS) if s.day(w.D_ATTEMPTS) else 0.0,
    Feature.SERVICE_SHORT: lambda s: _ratio(s, w.H_SHORT6, w.H_ANSWERED)
    if _ratio(s, w.H_SERVICE, w.H_ATTEMPTS) >= SERVICE_SHARE else 0.0,
    Feature.SURGE: lambda s: s.surge(),
}
