"""The IVR flow as a pure state machine: every menu branch, invalid input, timeouts, bounds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dncgate.consent.model import Action
from dncgate.ivr.flow import (
    Ask,
    Caller,
    Change,
    End,
    Hangup,
    IvrFlow,
    Load,
    Save,
    Say,
    Snapshot,
    Step,
    spell,
)
from dncgate.settings import DEFAULT_TAXONOMY, IvrSettings

CATS = tuple(DEFAULT_TAXONOMY)
ME = Caller("+12015550188")
PROMPTS = Path(__file__).resolve().parents[2] / "prompts" / "asterisk"


class Driver:
    """Answers the flow's steps: digits from a script, snapshots from a fake ledger."""

    def __init__(self, keys: list[str], snapshot: Snapshot | None = None, *, save_ok: bool = True,
                 load: Callable[[], Snapshot | None] | None = None, settings: IvrSettings | None = None,
                 caller: Caller = ME) -> None:
        self.keys = list(keys)
        self.snapshot = snapshot or Snapshot()
        self.save_ok = save_ok
        self.load = load
        self.flow = IvrFlow(caller, CATS, settings or IvrSettings())
        self.steps: list[Step] = []

    def run(self) -> Hangup:
        step = self.flow.start()
        while True:
            self.steps.append(step)
            if isinstance(step, Hangup):
                return step
            step = self.flow.send(self.answer(step))

    def answer(self, step: Step) -> Any:
        if isinstance(step, Say):
            return None
        if isinstance(step, Ask):
            return self.keys.pop(0) if self.keys else ""
        if isinstance(step, Load):
            return self.load() if self.load else self.snapshot
        if isinstance(step, Save):
            if self.save_ok:
                self.snapshot = _apply(self.snapshot, step.change)
            return self.save_ok
        raise AssertionError(step)

    def said(self) -> list[str]:
        return [p for s in self.steps if isinstance(s, Say) for p in s.prompts]

    def asked(self) -> list[str]:
        return [s.name for s in self.steps if isinstance(s, Ask)]

    def saves(self) -> list[Change]:
        return [s.change for s in self.steps if isinstance(s, Save)]


def _apply(snap: Snapshot, change: Change) -> Snapshot:
    if change.action is Action.DECLINE:
        return Snapshot(frozenset(change.categories or ("*",)), snap.consents)
    if change.action is Action.WITHDRAW:
        return Snapshot(frozenset(), snap.consents)
    if change.action is Action.REVOKE:
        return Snapshot(snap.declined, tuple(e for e in snap.consents if e != change.entity))
    return snap


# --- identification -----------------------------------------------------------------------------


def test_unidentified_caller_hears_why_and_is_hung_up() -> None:
    d = Driver([], caller=Caller(""))
    assert d.run() == Hangup(End.UNIDENTIFIED)
    assert d.steps == [Say(("ivr-unidentified",)), Hangup(End.UNIDENTIFIED)]  # the ledger is never read


def test_first_menu_has_the_welcome_later_ones_not() -> None:
    d = Driver(["4", ""])
    d.run()
    asks = [s for s in d.steps if isinstance(s, Ask)]
    assert asks[0].prompts == ("ivr-welcome", "ivr-menu")
    assert asks[1].prompts == ("ivr-menu",)
    assert (asks[0].max_digits, asks[0].timeout) == (1, IvrSettings().digit_timeout)


def test_load_failure_ends_the_call() -> None:
    d = Driver(["1"], load=lambda: None)
    assert d.run() == Hangup(End.LOAD_FAILED)
    assert d.said() == ["ivr-unavailable"]


# --- 1 decline all, 9 re-allow ------------------------------------------------------------------


def test_1_declines_all_marketing() -> None:
    d = Driver(["1"])
    d.run()
    assert d.saves() == [Change(Action.DECLINE, prompt="ivr-menu", keys="1")]
    assert "ivr-saved-decline-all" in d.said()
    assert d.snapshot.declines_all
    assert d.flow.saved == d.saves()


def test_9_undoes_the_decline() -> None:
    d = Driver(["9"], Snapshot(frozenset({"*"})))
    d.run()
    assert d.saves() == [Change(Action.WITHDRAW, prompt="ivr-menu", keys="9")]
    assert "ivr-saved-reallowed" in d.said()
    assert not d.snapshot.declined


def test_save_failure_says_so_and_hangs_up() -> None:
    d = Driver(["1", "1"], save_ok=False)
    assert d.run() == Hangup(End.SAVE_FAILED)
    assert d.said()[-1] == "ivr-failed"
    assert d.flow.saved == []


def test_after_a_save_the_state_is_read_again() -> None:
    d = Driver(["1", "4"])
    d.run()
    kinds = [type(s).__name__ for s in d.steps]
    assert kinds[:2] == ["Load", "Ask"]
    i = kinds.index("Save")
    assert kinds[i:i + 3] == ["Save", "Say", "Load"]
    (status,) = [s for s in d.steps if isinstance(s, Say) and "ivr-status-declined-all" in s.prompts]
    assert status.prompts[0] == "ivr-status-declined-all"


# --- 2 categories ---------------------------------------------------------------------------------


def test_2_lists_every_category_with_its_key() -> None:
    d = Driver(["2", "*"])
    d.run()
    (ask,) = [s for s in d.steps if isinstance(s, Ask) and s.name == "categories"]
    assert ask.prompts[0] == "ivr-categories-intro"
    assert ask.prompts[1:4] == ("ivr-cat-finance", "ivr-press", "ivr-digit-1")
    assert ask.prompts[-4:] == ("ivr-cat-food", "ivr-press", "ivr-digit-8", "ivr-categories-finish")
    assert (ask.max_digits, ask.terminator) == (len(CATS), "#")
    assert d.saves() == []  # * went back


def test_2_declines_the_chosen_categories_in_taxonomy_order() -> None:
    d = Driver(["2", "31"])  # the driver strips the terminator; "31#" reaches us as "31"
    d.run()
    assert d.saves() == [Change(Action.DECLINE, categories=("finance", "education"),
                                prompt="ivr-categories-intro", keys="31#")]
    assert d.said()[d.said().index("ivr-saved-categories"):][:3] == [
        "ivr-saved-categories", "ivr-cat-finance", "ivr-cat-education"]


def test_2_repeated_keys_count_once_and_hash_is_ignored() -> None:
    d = Driver(["2", "11#"])
    d.run()
    assert d.saves()[0].categories == ("finance",)


@pytest.mark.parametrize("keys", ["09", "19", "0", "1#2*"])
def test_2_invalid_keys_reprompt(keys: str) -> None:
    d = Driver(["2", keys, "2"])
    d.run()
    assert d.asked()[:3] == ["menu", "categories", "categories"]
    assert "ivr-invalid" in d.said()
    assert d.saves()[0].categories == ("real_estate",)


def test_2_timeout_reprompts() -> None:
    d = Driver(["2", "", "4"])
    d.run()
    assert d.asked()[:3] == ["menu", "categories", "categories"]
    assert "ivr-no-input" in d.said()
    assert d.saves()[0].categories == ("health",)


def test_only_nine_categories_get_a_key() -> None:
    many = tuple(f"c{i}" for i in range(12))
    flow = IvrFlow(ME, many)
    assert flow.offered == many[:9]


# --- 3 withdraw a consent -------------------------------------------------------------------------


def test_3_reads_the_businesses_out_by_number_and_spelled() -> None:
    d = Driver(["3", "2"], Snapshot(consents=("bank-1", "shop.b")))
    d.run()
    (ask,) = [s for s in d.steps if isinstance(s, Ask) and s.name == "consents"]
    assert ask.prompts == ("ivr-consents-intro",
                           "ivr-business", "ivr-digit-1", *spell("bank-1"),
                           "ivr-business", "ivr-digit-2", *spell("shop.b"),
                           "ivr-consents-choose")
    assert spell("bank-1") == ("ivr-char-b", "ivr-char-a", "ivr-char-n", "ivr-char-k", "ivr-char-dash",
                               "ivr-digit-1")
    assert d.saves() == [Change(Action.REVOKE, entity="shop.b", prompt="ivr-consents-choose", keys="2")]
    assert "ivr-consent-withdrawn" in d.said()
    assert d.snapshot.consents == ("bank-1",)


def test_3_without_consents_says_so() -> None:
    d = Driver(["3"])
    d.run()
    assert "ivr-no-consents" in d.said()
    assert d.saves() == []
    assert d.asked()[:2] == ["menu", "menu"]


@pytest.mark.parametrize("keys", ["3", "0", "#"])
def test_3_invalid_choice_reprompts(keys: str) -> None:
    d = Driver(["3", keys, "1"], Snapshot(consents=("bank-1", "shop-2")))
    d.run()
    assert d.asked()[:3] == ["menu", "consents", "consents"]
    assert ("ivr-invalid" if keys != "#" else "ivr-no-input") in d.said()
    assert d.saves()[0].entity == "bank-1"


def test_3_star_goes_back() -> None:
    d = Driver(["3", "*", "4"], Snapshot(consents=("bank-1",)))
    d.run()
    assert d.asked()[:3] == ["menu", "consents", "menu"]
    assert d.saves() == []


# --- 4 status -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (Snapshot(), ["ivr-status-none", "ivr-no-consents"]),
        (Snapshot(frozenset({"*"})), ["ivr-status-declined-all", "ivr-no-consents"]),
        (Snapshot(frozenset({"food", "finance"})),
         ["ivr-status-declined-categories", "ivr-cat-finance", "ivr-cat-food", "ivr-no-consents"]),
        (Snapshot(consents=("ab",)),
         ["ivr-status-none", "ivr-consents-intro", "ivr-business", "ivr-digit-1", "ivr-char-a", "ivr-char-b"]),
    ],
)
def test_4_status(snapshot: Snapshot, expected: list[str]) -> None:
    d = Driver(["4"], snapshot)
    d.run()
    (status,) = [s for s in d.steps if isinstance(s, Say) and s.prompts[0].startswith("ivr-status")]
    assert list(status.prompts) == expected
    assert d.saves() == []


# --- invalid input, timeouts, bounds ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["0", "5", "8", "*", "#"])
def test_invalid_menu_keys_reprompt(key: str) -> None:
    d = Driver([key, "1"])
    d.run()
    assert d.said()[0] == ("ivr-invalid" if key != "#" else "ivr-no-input")
    assert d.saves()[0].action is Action.DECLINE


def test_three_timeouts_say_goodbye() -> None:
    d = Driver([])
    assert d.run() == Hangup(End.NO_INPUT)
    assert d.asked() == ["menu"] * 3
    assert d.said() == ["ivr-no-input"] * 3 + ["ivr-goodbye"]


def test_three_invalid_choices_in_a_row_say_goodbye() -> None:
    d = Driver(["7", "8", "0", "1"])
    assert d.run() == Hangup(End.NO_INPUT)
    assert d.saves() == []


def test_a_saved_choice_resets_the_failure_count() -> None:
    d = Driver(["7", "8", "1", "7", "8", "9"])
    d.run()
    assert [c.action for c in d.saves()] == [Action.DECLINE, Action.WITHDRAW]


def test_failures_in_a_submenu_count_too() -> None:
    d = Driver(["2", "", "", ""])
    assert d.run() == Hangup(End.NO_INPUT)
    assert d.asked() == ["menu", "categories", "categories", "categories"]


def test_valid_menu_choices_reset_the_failure_count() -> None:
    d = Driver(["7", "4", "7", "4", "7", "1"])
    d.run()
    assert [c.action for c in d.saves()] == [Action.DECLINE]


def test_the_number_of_questions_is_bounded() -> None:
    d = Driver(["4"] * 100, settings=IvrSettings(max_asks=5))
    assert d.run() == Hangup(End.LIMIT)
    assert len(d.asked()) == 5
    assert d.said()[-1] == "ivr-goodbye"


def test_wrong_results_are_refused() -> None:
    flow = IvrFlow(ME, CATS)
    with pytest.raises(RuntimeError):
        flow.send(None)
    assert flow.start() == Load()
    with pytest.raises(RuntimeError):
        flow.start()
    with pytest.raises(TypeError):
        flow.send("1")
    assert isinstance(flow.send(Snapshot()), Ask)
    with pytest.raises(TypeError):
        flow.send(1)


def test_no_step_after_hangup() -> None:
    flow = IvrFlow(Caller(""), CATS)
    flow.start()
    assert flow.send(None) == Hangup(End.UNIDENTIFIED)
    assert flow.done
    with pytest.raises(RuntimeError):
        flow.send(None)


# --- every prompt the flow can play exists, in both languages -------------------------------------


def test_every_prompt_is_generated() -> None:
    runs = [
        Driver([], caller=Caller("")), Driver(["1", "4", "9", "3", "*", "0", ""], Snapshot(consents=(
            "abcdefghijklm", "nopqrstuvwxyz", "0123456789", "a-b.c_d"))),
        Driver(["2", "12345678", "3", "1"], Snapshot(consents=("x",))), Driver(["1"], save_ok=False),
        Driver(["1"], load=lambda: None), Driver(["4"], Snapshot(frozenset(CATS))),
    ]
    used: set[str] = set()
    for d in runs:
        d.run()
        used |= {p for s in d.steps if isinstance(s, Say | Ask) for p in s.prompts}
    for language in ("en", "zh"):
        missing = sorted(p for p in used if not (PROMPTS / language / f"{p}.wav").is_file())
        assert missing == [], language
