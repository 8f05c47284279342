"""The analyser: sliding windows without a midnight reset, rules and their alerts, bounds, persistence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dncgate.early_warning import sketch
from dncgate.early_warning.alerts import Alert, OriginatorKind, Severity
from dncgate.early_warning.analyser import Analyser, Watch
from dncgate.early_warning.rules import Feature, Rule, figures
from dncgate.early_warning.windows import Windows

MIDNIGHT = int(datetime(2026, 3, 3, tzinfo=UTC).timestamp())  # a Tuesday


def analyser(*rules: Rule, **kwargs: object) -> tuple[Analyser, list[Alert]]:
    raised: list[Alert] = []
    watch = Watch("acme", rules=rules) if rules else Watch("acme")
    return Analyser({"acme": watch}, on_alert=raised.append, **kwargs), raised  # type: ignore[arg-type]


def call(a: Analyser, at: float, callee: int, *, originator: str = "acct", billsec: float = 60.0,
         refused: bool = False, caller_id: str = "+15550100", service: bool = False) -> None:
    a.attempt("acme", originator, at, callee, refused, not refused, service, caller_id, f"d-{at}")
    a.ended("acme", originator, at + 5 + billsec, not refused and billsec > 0, billsec, f"c-{at}")


def state(a: Analyser, originator: str = "acct") -> Windows:
    return {o: s for _, o, s in a.states()}[originator]


def test_no_midnight_reset_the_day_window_spans_it() -> None:
    a, _ = analyser(Rule("volume", Feature.ATTEMPTS_PER_MIN, warning=1000))
    for i in range(120):  # one call a minute, from 23:00 to 01:00
        call(a, MIDNIGHT - 3600 + i * 60, 15551230000 + i * 17)
    a.flush(MIDNIGHT + 3600 + 30)
    got = figures(state(a))
    assert got["attempts_24h"] == 120  # a per-day counter would say 60
    assert 58 <= got["attempts_1h"] <= 60  # the hour window slid past midnight too (58-60 minutes)


def test_the_minute_window_forgets_after_a_minute() -> None:
    a, _ = analyser(Rule("volume", Feature.ATTEMPTS_PER_MIN, warning=1000))
    for i in range(30):
        a.attempt("acme", "acct", MIDNIGHT + i, 15551230000 + i * 7, False, True, False, "", "d")
    a.flush(MIDNIGHT + 31)
    assert figures(state(a))[Feature.ATTEMPTS_PER_MIN] == 30
    a.flush(MIDNIGHT + 200)
    assert figures(state(a))[Feature.ATTEMPTS_PER_MIN] == 0
    assert figures(state(a))["attempts_1h"] == 30


def test_a_short_call_blast_raises_one_critical_alert_with_its_evidence() -> None:
    a, raised = analyser()
    for i in range(200):
        call(a, MIDNIGHT + 12 * 3600 + i * 0.75, 15551230000 + i * 7919, billsec=2)
    short = [x for x in raised if x.rule == "short_calls"]
    assert [x.severity for x in short] == [Severity.CRITICAL]
    alert = short[0]
    assert alert.originator.kind is OriginatorKind.ACCOUNT
    assert alert.originator.value == "acct"
    assert alert.figures[Feature.SHORT6] == 1.0
    assert alert.figures["answered_1h"] >= 40
    assert len(alert.sample_decisions) == 4
    assert all(i.startswith("d-") for i in alert.sample_decisions)
    assert all(i.startswith("c-") for i in alert.sample_calls)
    assert alert.window == "1h"
    assert alert.threshold == 0.7


def test_legitimate_calls_raise_nothing() -> None:
    a, raised = analyser()
    for i in range(300):  # a call centre: 6 a minute in its day, a few caller IDs, long calls
        call(a, MIDNIGHT + 10 * 3600 + i * 10, 15551230000 + i * 7919, billsec=90 if i % 3 else 0,
             caller_id=f"+1555010{i % 3}")
    assert raised == []


def test_an_alert_is_raised_again_only_after_the_value_fell_back() -> None:
    rule = Rule("refused", Feature.REFUSED, warning=0.5, min_attempts=10)
    a, raised = analyser(rule)
    at = MIDNIGHT + 12 * 3600
    for i in range(40):
        call(a, at + i * 6, 15551230000 + i * 100, refused=True)
    assert len(raised) == 1
    for i in range(40, 400):  # the share falls to ~10 %
        call(a, at + i * 6, 15551230000 + i * 100, refused=i % 10 == 0)
    assert len(raised) == 1
    for i in range(400, 800):
        call(a, at + i * 6, 15551230000 + i * 100, refused=True)
    assert len(raised) == 2
    assert raised[0].alert_id != raised[1].alert_id


def test_a_rule_outside_its_hours_and_weekdays_is_silent() -> None:
    night_only = Rule("night", Feature.ATTEMPTS_PER_MIN, warning=20, hours=(22 * 60, 6 * 60))
    weekend = Rule("weekend", Feature.ATTEMPTS_PER_MIN, warning=20, weekdays=frozenset({5, 6}))
    a, raised = analyser(night_only, weekend)
    for i in range(100):  # Tuesday noon
        call(a, MIDNIGHT + 12 * 3600 + i, 15551230000 + i * 7)
    assert raised == []
    for i in range(100):  # Tuesday 23:00
        call(a, MIDNIGHT + 23 * 3600 + i, 15551230000 + i * 7)
    assert [x.rule for x in raised] == ["night"]


def test_a_below_rule_fires_downwards() -> None:
    a, raised = analyser(Rule("low_asr", Feature.ASR, warning=0.2, critical=0.1, below=True, min_attempts=30))
    for i in range(60):
        call(a, MIDNIGHT + 12 * 3600 + i * 2, 15551230000 + i * 7, billsec=0)
    assert [x.severity for x in raised] == [Severity.CRITICAL]


def test_unknown_tenants_and_unkeyed_calls_are_counted_not_kept() -> None:
    a, _ = analyser()
    a.attempt("nobody", "acct", MIDNIGHT, 1, False, True, False, "", "d")
    a.attempt("acme", "", MIDNIGHT, 1, False, True, False, "", "d")
    assert a.unkeyed == 2
    assert a.originators() == 0


def test_a_complaint_counts_for_the_originator_that_used_the_caller_id() -> None:
    a, _ = analyser()
    call(a, MIDNIGHT, 15551230000, caller_id="+15550199")
    assert a.complaint("acme", "+15550199", MIDNIGHT + 100)
    assert not a.complaint("acme", "+15550000", MIDNIGHT + 100)
    assert not a.complaint("other", "+15550199", MIDNIGHT + 100)
    a.flush(MIDNIGHT + 200)
    assert figures(state(a))[Feature.COMPLAINTS] == 1000.0


def test_originators_are_bounded() -> None:
    a, _ = analyser(max_originators=100)
    for i in range(250):
        call(a, MIDNIGHT + i, 15551230000, originator=f"o{i}")
    assert a.originators() <= 100
    assert a.evicted >= 150
    assert "o249" in {o for _, o, _ in a.states()}  # the newest stay


def test_the_state_survives_dump_and_load() -> None:
    a, _ = analyser()
    for i in range(90):
        call(a, MIDNIGHT + i * 20, 15551230000 + i, caller_id=f"+1555{i % 5}", billsec=3)
    a.flush(MIDNIGHT + 2000)
    before = figures(state(a))
    b, _ = analyser()
    assert b.restore("acme", "acct", state(a).dump())
    assert figures(state(b)) == before
    assert not b.restore("acme", "x", b"garbage")
    assert not b.restore("nobody", "acct", state(a).dump())


def test_a_restored_state_keeps_sliding() -> None:
    a, _ = analyser()
    for i in range(30):
        call(a, MIDNIGHT + i * 60, 15551230000 + i * 7)
    a.flush(MIDNIGHT + 1800)
    b, _ = analyser()
    b.restore("acme", "acct", state(a).dump())
    b.flush(MIDNIGHT + 2 * 86400)
    assert figures(state(b))["attempts_24h"] == 0


@pytest.mark.parametrize("count", [1, 10, 100, 1000, 20000])
def test_the_sketch_estimates_distinct_values(count: int) -> None:
    registers = bytearray(64)
    for value in range(count):
        sketch.add(registers, 0, 6, sketch.mix64(15550000000 + value))
        sketch.add(registers, 0, 6, sketch.mix64(15550000000 + value))  # twice: counted once
    assert abs(sketch.estimate(registers, 6, 1) - count) <= max(1.0, 0.4 * count)


def test_calls_whose_end_never_came_stop_counting_as_in_progress() -> None:
    a, _ = analyser()
    for i in range(20):  # the feed went down mid-call: no ends
        a.attempt("acme", "acct", MIDNIGHT + i, 15551230000 + i * 7, False, True, False, "", "d")
    a.flush(MIDNIGHT + 30)
    assert figures(state(a))[Feature.CONCURRENT] == 20
    a.ended("acme", "acct", MIDNIGHT + 40, True, 30, "c")  # one end: one fewer in progress
    a.flush(MIDNIGHT + 50)
    assert figures(state(a))[Feature.CONCURRENT] == 19
    a.attempt("acme", "acct", MIDNIGHT + 5 * 3600, 15559990000, True, False, False, "", "d")
    assert figures(state(a))[Feature.CONCURRENT] == 0  # after 4 h without a fact
