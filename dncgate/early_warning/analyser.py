"""The analyser: call facts in, alerts out, per originator, in O(1) work per fact.

Two kinds of fact reach it, already keyed by the tenant's originator key (``signals`` does that):
an **attempt** (the gate decided a call: refused or not, service or marketing, the callee, the
caller ID, the decision id) and an **end** (a switch's feed saw a call end: answered or not, its
billed seconds, the call id). An attempt is counted when the gate decides it; an end's answer and
duration when the switch reports it, so the answer-seizure ratio is answered / ended calls and the
calls in progress are the allowed attempts not yet ended. ``complaint`` adds a complaint against a
caller ID to the originator that last used it.

Per fact the analyser finds the originator's :class:`~dncgate.early_warning.windows.Windows` and
bumps a few counters; once per 5 s slot of an originator's traffic it closes the slot, and at
most once per 15 s it evaluates the tenant's rules (the checkpoint evaluates the rest). A rule
whose level rises (under -> warning -> critical) raises one
:class:`~dncgate.early_warning.alerts.Alert` through ``on_alert``; it is raised again only after
the feature has fallen back past 80 % of the warning threshold (no alert storm on a value that
hovers at its threshold).

Originators are bounded (``max_originators``): idle ones (nothing for 26 h) go first, then the
least recently seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog

from dncgate.early_warning import rules as r
from dncgate.early_warning import sketch
from dncgate.early_warning import windows as w
from dncgate.early_warning.alerts import Alert, OriginatorKey, OriginatorKind
from dncgate.early_warning.windows import Windows

log = structlog.get_logger("dncgate.early_warning")
IDLE_S = 26 * 3600
MASK64 = sketch.MASK64
_CALLEE_SHIFT = 64 - w.CALLEE_BITS
_CALLEE_MASK = (1 << _CALLEE_SHIFT) - 1
_CALLEE_RANK = 65 - w.CALLEE_BITS
MAX_CALLER_IDS = 100_000  # caller ID -> originator, per tenant, for complaints


@dataclass(frozen=True, slots=True)
class Watch:
    """One tenant's early warning: which field is its originator, its rules, its local day."""

    tenant: str
    key: OriginatorKind = OriginatorKind.ACCOUNT
    rules: tuple[r.Rule, ...] = r.DEFAULT_RULES
    zone: str = "UTC"
    night: tuple[int, int] = (21 * 60, 8 * 60)  # local minutes [start, end): 21:00-08:00


@dataclass
class _Local:
    """The tenant's local hour, recomputed when a fact leaves it (not per fact)."""

    zone: ZoneInfo
    night: tuple[int, int]
    start: int = 1
    end: int = 0
    minute: int = 0  # minute of the day at ``start``
    weekday: int = 0
    night_flag: bool = False  # ``is_night`` for [night_since, night_until)
    night_since: int = 1
    night_until: int = 0

    def at(self, at: int) -> tuple[int, int]:
        if not self.start <= at < self.end:
            hour = at - at % 3600
            local = datetime.fromtimestamp(hour, self.zone)
            self.start, self.end = hour, hour + 3600
            self.minute, self.weekday = local.hour * 60 + local.minute, local.weekday()
        return self.minute + (at - self.start) // 60, self.weekday

    def is_night(self, at: int) -> bool:
        """Whether ``at`` is in the tenant's local night; the answer is kept for the rest of its minute."""
        minute = self.at(at)[0] % 1440
        start, end = self.night
        self.night_flag = start <= minute < end if start <= end else (minute >= start or minute < end)
        self.night_since, self.night_until = at - at % 60, at - at % 60 + 60
        return self.night_flag


@dataclass
class _Tenant:
    watch: Watch
    local: _Local
    states: dict[str, Windows] = field(default_factory=dict)
    caller_ids: dict[str, str] = field(default_factory=dict)  # caller ID -> originator (complaints)
    volumes: tuple[tuple[r.Rule, int], ...] = ()  # each rule and what its min_attempts counts
    least: int = r.MIN_EVALUATED  # below this volume nothing is evaluated (the rules' smallest min_attempts)

    def __post_init__(self) -> None:
        self.volumes = tuple((rule, r.VOLUME.get(rule.feature, r.V_ATTEMPTS)) for rule in self.watch.rules)
        self.least = min([r.MIN_EVALUATED] + [rule.min_attempts for rule in self.watch.rules if rule.min_attempts])


class Analyser:
    def __init__(self, watches: Mapping[str, Watch], *, on_alert: Callable[[Alert], None] | None = None,
                 max_originators: int = 200_000) -> None:
        self.watches = dict(watches)
        self._tenants = {name: _Tenant(watch, _Local(ZoneInfo(watch.zone), watch.night))
                         for name, watch in watches.items()}
        self.on_alert = on_alert
        self.max_originators = max_originators
        self.facts = 0
        self.unkeyed = 0  # facts of an unknown tenant or without the tenant's originator field
        self.alerts = 0
        self.evicted = 0
        self.latest = 0  # the latest fact's time (epoch seconds)

    def watch(self, tenant: str) -> Watch | None:
        known = self._tenants.get(tenant)
        return known.watch if known is not None else None

    # -- facts ------------------------------------------------------------------------------------

    def attempt(self, tenant: str, originator: str, at: float, callee: int, refused: bool, allowed: bool,
                service: bool, caller_id: str, decision_id: str) -> None:
        """The gate decided a call of ``originator`` (the tenant's key value) to ``callee`` (digits)."""
        # the hot path: _state and sketch.add/mix64 written out (a function call costs as much as the rest)
        known = self._tenants.get(tenant)
        if known is None or not originator:
            self.unkeyed += 1
            return
        moment = int(at)
        state = self._find(known, originator, moment)
        state.cur_attempts += 1
        if refused:
            state.cur_refused += 1
        elif allowed:
            state.in_progress += 1
            if state.in_progress > state.peak:
                state.peak = state.in_progress
        if service:
            state.cur_service += 1
        if 0 < callee - state.last_callee <= 3:
            state.cur_sequential += 1
        state.last_callee = callee
        h = ((callee + 0x632BE59BD9B4E019) * 0x9E3779B97F4A7C15) & MASK64  # sketch.mix64
        h ^= h >> 31
        h = (h * 0xBF58476D1CE4E5B9) & MASK64
        h ^= h >> 29
        index = state.callee_base + (h >> _CALLEE_SHIFT)  # sketch.add
        rank = _CALLEE_RANK - (h & _CALLEE_MASK).bit_length()
        if state.callees[index] < rank:
            state.callees[index] = rank
        if caller_id != state.last_caller_id:
            state.last_caller_id = caller_id
            if sketch.add(state.cids, state.cid_base, w.CID_BITS, sketch.text_hash(caller_id)):
                state.cid_estimate = -1.0
            self._owner(known, caller_id, originator)
        local = known.local
        if local.night_since <= moment < local.night_until:
            if local.night_flag:
                state.cur_night += 1
        elif local.is_night(moment):
            state.cur_night += 1
        state.decisions[state.samples & 3] = decision_id
        state.samples += 1

    def ended(self, tenant: str, originator: str, at: float, answered: bool, billsec: float, call_id: str) -> None:
        """A switch reported the end of a call of ``originator``."""
        known = self._tenants.get(tenant)
        if known is None or not originator:
            self.unkeyed += 1
            return
        state = self._find(known, originator, int(at))
        state.cur_ended += 1
        if answered:
            state.cur_answered += 1
            state.cur_answered_s += int(billsec)
            if billsec < 6:
                state.cur_short6 += 1
            if billsec < 30:
                state.cur_short30 += 1
        if state.in_progress > 0:
            state.in_progress -= 1
        state.calls[state.call_samples & 3] = call_id
        state.call_samples += 1

    def complaint(self, tenant: str, caller_id: str, at: float) -> bool:
        """A complaint about a call from ``caller_id``: counted for the originator that last used it
        (the caller ID itself when the tenant keys originators by caller ID). False: no such originator."""
        originator = self.originator_of(tenant, caller_id)
        if originator is None:
            return False
        self._find(self._tenants[tenant], originator, int(at)).cur_complaints += 1
        return True

    def originator_of(self, tenant: str, caller_id: str) -> str | None:
        """The originator with a state that last used ``caller_id`` (the caller ID itself when the
        tenant keys originators by caller ID); None: no such originator."""
        known = self._tenants.get(tenant)
        if known is None:
            return None
        originator = caller_id if known.watch.key is OriginatorKind.CALLER_ID else known.caller_ids.get(caller_id)
        return originator if originator is not None and originator in known.states else None

    @staticmethod
    def _owner(known: _Tenant, caller_id: str, originator: str) -> None:
        owners = known.caller_ids
        owners[caller_id] = originator
        if len(owners) > MAX_CALLER_IDS:
            del owners[next(iter(owners))]

    def _find(self, known: _Tenant, originator: str, moment: int) -> Windows:
        """The originator's windows, its finished slot closed (and the rules evaluated) first."""
        self.facts += 1
        if moment > self.latest:
            self.latest = moment
        state = known.states.get(originator)
        if state is None:
            state = known.states[originator] = Windows(moment, len(known.watch.rules))
            if len(known.states) > self.max_originators:
                self._bound()
            return state
        if moment // w.SLOT_1M > state.slot_1m:
            state.close(moment)
            if state.slot_1m - state.evaluated >= w.EVALUATE_EVERY:
                state.evaluated = state.slot_1m
                self._evaluate(known, originator, state, moment)
        if moment > state.seen:
            state.seen = moment
        return state

    # -- rules ------------------------------------------------------------------------------------

    def _evaluate(self, known: _Tenant, originator: str, state: Windows, at: int) -> None:
        volumes = r.volumes(state)
        least = known.least
        if volumes[r.V_ATTEMPTS] < least and volumes[r.V_ENDED] < least and volumes[r.V_DAY] < 5 * least and \
                state.peak < least:
            if any(state.levels):
                state.levels[:] = bytes(len(state.levels))
            return
        minute, weekday = known.local.at(at)
        levels = state.levels
        for index, (rule, counted) in enumerate(known.volumes):
            if (rule.hours is not None or rule.weekdays is not None) and not rule.applies(minute % 1440, weekday):
                continue
            held = levels[index]
            if volumes[counted] < rule.min_attempts:
                if held:
                    levels[index] = 0
                continue
            value = r.value(state, rule.feature)
            level = rule.level(value)
            if level > held:
                levels[index] = level
                self._raise(known.watch, originator, state, rule, level, at, r.figures(state))
            elif level < held and not _near(rule, value):
                levels[index] = level

    def _raise(self, watch: Watch, originator: str, state: Windows, rule: r.Rule, level: int, at: int,
               figures: dict[str, float]) -> None:
        severity = r.SEVERITY[level]
        origin = OriginatorKey(watch.tenant, watch.key, originator)
        stable = f"{origin}|{rule.name}|{severity.value}|{state.slot_1m}"
        decisions, calls = state.sample_ids()
        alert = Alert(
            alert_id="ew-" + hashlib.sha256(stable.encode()).hexdigest()[:29], originator=origin, rule=rule.name,
            severity=severity, raised_at=datetime.fromtimestamp(at, UTC), window=rule.window,
            figures={k: round(v, 4) for k, v in figures.items()}, threshold=rule.threshold(level),
            report_only=rule.report_only, sample_decisions=decisions, sample_calls=calls,
            detail=f"{rule.feature.value} {figures[rule.feature]:.3g} {'<=' if rule.below else '>='} "
                   f"{rule.threshold(level):g} ({rule.window})",
        )
        self.alerts += 1
        log.info("early_warning.alert", alert_id=alert.alert_id, originator=str(origin), rule=rule.name,
                 severity=severity.value, report_only=rule.report_only, detail=alert.detail)
        if self.on_alert is not None:
            self.on_alert(alert)

    # -- bounds and persistence -------------------------------------------------------------------

    def originators(self) -> int:
        return sum(len(t.states) for t in self._tenants.values())

    def _bound(self) -> None:
        if self.originators() <= self.max_originators:
            return
        for known in self._tenants.values():
            for originator in [o for o, s in known.states.items() if self.latest - s.seen > IDLE_S]:
                del known.states[originator]
                self.evicted += 1
        excess = self.originators() - self.max_originators * 9 // 10
        if excess > 0:
            every = sorted(((s.seen, t, o) for t, k in self._tenants.items() for o, s in k.states.items()))
            for _, tenant, originator in every[:excess]:
                del self._tenants[tenant].states[originator]
                self.evicted += 1
        log.warning("early_warning.originators_evicted", evicted=self.evicted, kept=self.originators())

    def states(self) -> Iterator[tuple[str, str, Windows]]:
        for tenant, known in self._tenants.items():
            for originator, state in known.states.items():
                yield tenant, originator, state

    def restore(self, tenant: str, originator: str, raw: bytes) -> bool:
        """Put back a state ``Windows.dump`` wrote (False: unknown tenant, or not a state)."""
        known = self._tenants.get(tenant)
        if known is None:
            return False
        try:
            state = Windows.load(raw, len(known.watch.rules))
        except ValueError as exc:
            log.warning("early_warning.state_unreadable", tenant=tenant, originator=originator, error=str(exc))
            return False
        known.states[originator] = state
        self.latest = max(self.latest, state.seen)
        return True

    def checkpoint(self, at: float, since: int) -> list[tuple[str, str, bytes, int]]:
        """The states that took a fact at or after ``since``, their open slot closed at ``at`` first:
        (tenant, originator, ``Windows.dump()``, last fact) rows to save."""
        rows = []
        for known in self._tenants.values():
            for originator, state in known.states.items():
                if state.seen >= since:
                    rows.append((known.watch.tenant, originator, self._dump(known, originator, state, int(at)),
                                 state.seen))
        return rows

    def dump(self, tenant: str, originator: str, at: float) -> tuple[bytes, int] | None:
        """One originator's state (its open slot closed at ``at`` first) and its last fact; None: no state."""
        known = self._tenants.get(tenant)
        state = known.states.get(originator) if known is not None else None
        if known is None or state is None:
            return None
        return self._dump(known, originator, state, int(at)), state.seen

    def _dump(self, known: _Tenant, originator: str, state: Windows, moment: int) -> bytes:
        """The state's bytes, its open slot closed first (at its end when ``moment`` is behind the
        facts' own time, another gate's clock: the dump leaves the open slot out)."""
        if state.cur_attempts or state.cur_ended or state.cur_complaints or moment // w.SLOT_1M > state.slot_1m:
            moment = max(moment, (state.slot_1m + 1) * w.SLOT_1M)
            state.close(moment)
            self._evaluate(known, originator, state, moment)
        return state.dump()

    def holds(self, tenant: str, originator: str) -> bool:
        known = self._tenants.get(tenant)
        return known is not None and originator in known.states

    def drop(self, which: Callable[[str, str], bool]) -> int:
        """Forget the states of every (tenant, originator) ``which`` names (another analyser holds them now)."""
        dropped = 0
        for tenant, known in self._tenants.items():
            for originator in [o for o in known.states if which(tenant, o)]:
                del known.states[originator]
                dropped += 1
        return dropped

    def flush(self, at: float) -> None:
        """Close every originator's current slot at ``at`` (and evaluate): before a checkpoint."""
        moment = int(at)
        for known in self._tenants.values():
            for originator, state in known.states.items():
                if moment // w.SLOT_1M > state.slot_1m:
                    state.close(moment)
                    self._evaluate(known, originator, state, moment)


def _near(rule: r.Rule, value: float) -> bool:
    """Still within 20 % of the warning threshold: the level holds (hysteresis)."""
    threshold = rule.warning if rule.warning is not None else rule.critical
    if threshold is None:
        return False
    return value <= threshold * 1.25 if rule.below else value >= threshold * 0.8
