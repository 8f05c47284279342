"""The subscriber self-service IVR as a pure state machine (no I/O, no clock, no switch).

The flow says what to do next as a *step*; whoever drives it (``dncgate.ivr.runner`` with an
Asterisk or FreeSWITCH adapter) carries the step out and hands back its result::

    flow = IvrFlow(caller, categories)
    step = flow.start()
    while not isinstance(step, Hangup):
        step = flow.send(result_of(step))

=========  ====================================================  ==================================
step       what the driver does                                  what it sends back
=========  ====================================================  ==================================
``Say``    plays the prompts                                     ``None``
``Ask``    plays the prompts, collects up to ``max_digits``      the digits (``""``: nothing before
           (``terminator`` ends early), waits ``timeout`` s      the timeout); never the terminator
``Load``   reads the caller's preferences and consents           a :class:`Snapshot` (None: failed)
``Save``   appends the change to the consent ledger              ``True`` once recorded, else False
``Hangup`` ends the call                                         (the flow is over)
=========  ====================================================  ==================================

Menu (after the caller ID identified a subscriber): 1 decline all marketing calls; 2 choose the
declined categories (one digit per category of the tenant's taxonomy, ``#`` to finish, ``*`` back);
3 withdraw a consent given to a business (the businesses holding one are read out by number, the
name spelled; ``*`` back); 4 hear the current status; 9 undo the decline (re-allow marketing calls).
Every collection has a timeout; ``max_failures`` consecutive timeouts or invalid choices end the
call, as does ``max_asks`` collections in all. A missing or withheld caller ID gets "cannot
identify you" and a hang-up, before anything is read.

Prompt ids (``ivr-...``) are file names without language or extension; the adapter turns them into
``dncgate/<language>/<id>`` (Asterisk) or ``<sounds>/dncgate/<language>/<id>.wav`` (FreeSWITCH).
"""

from __future__ import annotations

import string
from collections.abc import Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dncgate.consent.model import Action
from dncgate.model import DECLINE_ALL
from dncgate.settings import IvrSettings  # the menu's bounds: digit_timeout, max_failures, max_asks

MENU_KEYS = "12349"
MAX_LIST = 9  # one digit per category / business
BACK = "*"
TERMINATOR = "#"

# Spelled characters of an entity name -> prompt ids (the ledger allows [A-Za-z0-9_.-]).
_CHAR_PROMPTS = {c: f"ivr-char-{c}" for c in string.ascii_lowercase} | {
    d: f"ivr-digit-{d}" for d in string.digits
} | {"-": "ivr-char-dash", ".": "ivr-char-dot", "_": "ivr-char-underscore"}


class End(StrEnum):
    """Why the call ended (``Hangup.reason``)."""

    UNIDENTIFIED = "unidentified"  # no usable caller ID
    NO_INPUT = "no_input"  # too many timeouts / invalid choices in a row
    LIMIT = "limit"  # max_asks collections reached
    SAVE_FAILED = "save_failed"  # the ledger did not record a change
    LOAD_FAILED = "load_failed"  # the caller's state could not be read


@dataclass(frozen=True, slots=True)
class Say:
    prompts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ask:
    prompts: tuple[str, ...]
    max_digits: int
    timeout: float
    name: str  # which question: "menu", "categories", "consents" (logs, channel variable names)
    terminator: str = TERMINATOR


@dataclass(frozen=True, slots=True)
class Load:
    pass


@dataclass(frozen=True, slots=True)
class Change:
    """One ledger record the caller asked for (the driver adds tenant, callee and evidence)."""

    action: Action
    categories: tuple[str, ...] = ()
    entity: str = ""
    prompt: str = ""  # the prompt the choice was made at (the evidence's template id)
    keys: str = ""  # what the caller pressed there


@dataclass(frozen=True, slots=True)
class Save:
    change: Change


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str  # an End value, or "caller" when the driver saw the caller hang up


Step = Say | Ask | Load | Save | Hangup


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the ledger says about the caller now."""

    declined: frozenset[str] = frozenset()  # DECLINE_ALL ("*") or category codes
    consents: tuple[str, ...] = ()  # entities holding a consent in force, in the order to read them

    @property
    def declines_all(self) -> bool:
        return DECLINE_ALL in self.declined


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller as the switch gave it: identified (an E.164 number) or not."""

    e164: str = ""  # empty: missing, withheld, or not a subscriber number

    @property
    def identified(self) -> bool:
        return bool(self.e164)


def spell(name: str) -> tuple[str, ...]:
    """The prompt ids that spell ``name`` (letters, digits, '-', '.', '_'; others skipped)."""
    return tuple(_CHAR_PROMPTS[c] for c in name.lower() if c in _CHAR_PROMPTS)


def digit(n: int) -> str:
    return f"ivr-digit-{n}"


def category_prompt(code: str) -> str:
    return f"ivr-cat-{code}"


@dataclass
class IvrFlow:
    """One call's menu. ``start()`` once, then ``send(result)`` until a :class:`Hangup`."""

    caller: Caller
    categories: tuple[str, ...]  # the tenant's taxonomy, in order; the first MAX_LIST get a key
    settings: IvrSettings = field(default_factory=IvrSettings)
    saved: list[Change] = field(default_factory=list)  # what was recorded, in order
    _script: Generator[Step, Any, None] | None = field(default=None, repr=False)
    _last: Step | None = field(default=None, repr=False)
    _asks: int = 0
    _failures: int = 0
    _snapshot: Snapshot = field(default_factory=Snapshot)

    @property
    def done(self) -> bool:
        return isinstance(self._last, Hangup)

    @property
    def offered(self) -> tuple[str, ...]:
        return self.categories[:MAX_LIST]

    def start(self) -> Step:
        if self._script is not None:
            raise RuntimeError("the flow has already started")
        self._script = self._run()
        self._last = next(self._script)
        return self._last

    def send(self, result: Any) -> Step:
        if self._script is None or self._last is None:
            raise RuntimeError("start() the flow first")
        if isinstance(self._last, Hangup):
            raise RuntimeError("the flow is over")
        self._check(self._last, result)
        self._last = self._script.send(result)
        return self._last

    @staticmethod
    def _check(step: Step, result: Any) -> None:
        expected: dict[type, type | tuple[type, ...]] = {
            Say: type(None), Ask: str, Load: (Snapshot, type(None)), Save: bool}
        if not isinstance(result, expected[type(step)]):
            raise TypeError(f"{type(step).__name__} expects {expected[type(step)]}, got {result!r}")

    # -- the script -----------------------------------------------------------------------------

    def _run(self) -> Generator[Step, Any, None]:
        if not self.caller.identified:
            yield Say(("ivr-unidentified",))
            yield Hangup(End.UNIDENTIFIED)
            return
        end = yield from self._load()
        if end is not None:
            yield Hangup(end)
            return
        intro: tuple[str, ...] = ("ivr-welcome",)
        while True:
            keys = yield from self._ask((*intro, "ivr-menu"), 1, "menu")
            intro = ()
            if keys and len(keys) == 1 and keys in MENU_KEYS:
                self._failures = 0  # a valid choice: the tries count again from here
            if keys is None:
                yield from self._goodbye()
                yield Hangup(End.LIMIT if self._asks >= self.settings.max_asks else End.NO_INPUT)
                return
            if keys == "":
                end = None
            elif keys == "1":
                end = yield from self._save(Change(Action.DECLINE, prompt="ivr-menu", keys=keys),
                                            ("ivr-saved-decline-all",))
            elif keys == "2":
                end = yield from self._choose_categories()
            elif keys == "3":
                end = yield from self._withdraw_consent()
            elif keys == "4":
                yield Say(self._status())
                end = None
            elif keys == "9":
                end = yield from self._save(Change(Action.WITHDRAW, prompt="ivr-menu", keys=keys),
                                            ("ivr-saved-reallowed",))
            else:
                yield from self._invalid()
                end = None
            if end is not None:
                yield Hangup(end)
                return

    def _ask(self, prompts: tuple[str, ...], max_digits: int, name: str) -> Generator[Step, Any, str | None]:
        """Ask until an answer comes; "" after a timeout (the caller is told), None when out of tries."""
        if self._asks >= self.settings.max_asks or self._failures >= self.settings.max_failures:
            return None
        self._asks += 1
        keys: str = yield Ask(prompts, max_digits, self.settings.digit_timeout, name)
        keys = keys.replace(TERMINATOR, "")
        if not keys:
            self._failures += 1
            yield Say(("ivr-no-input",))
            return ""
        return keys

    def _invalid(self) -> Generator[Step, Any, None]:
        self._failures += 1
        yield Say(("ivr-invalid",))

    def _goodbye(self) -> Generator[Step, Any, None]:
        yield Say(("ivr-goodbye",))

    def _load(self) -> Generator[Step, Any, End | None]:
        snapshot: Snapshot | None = yield Load()
        if snapshot is None:
            yield Say(("ivr-unavailable",))
            return End.LOAD_FAILED
        self._snapshot = snapshot
        return None

    def _save(self, change: Change, confirm: tuple[str, ...]) -> Generator[Step, Any, End | None]:
        saved: bool = yield Save(change)
        if not saved:
            yield Say(("ivr-failed",))
            return End.SAVE_FAILED
        self.saved.append(change)
        self._failures = 0
        yield Say(confirm)
        return (yield from self._load())

    def _choose_categories(self) -> Generator[Step, Any, End | None]:
        offered = self.offered
        listing: list[str] = ["ivr-categories-intro"]
        for n, code in enumerate(offered, start=1):
            listing += [category_prompt(code), "ivr-press", digit(n)]
        listing.append("ivr-categories-finish")
        choice = yield from self._pick_from(tuple(listing), len(offered), "categories", len(offered))
        if choice is None:
            return None  # the menu loop says goodbye when out of tries
        keys, picked = choice
        chosen = tuple(offered[n - 1] for n in sorted(picked))
        confirm = ("ivr-saved-categories", *(category_prompt(c) for c in chosen))
        return (yield from self._save(
            Change(Action.DECLINE, categories=chosen, prompt="ivr-categories-intro", keys=keys + TERMINATOR),
            confirm))

    def _withdraw_consent(self) -> Generator[Step, Any, End | None]:
        holders = self._snapshot.consents[:MAX_LIST]
        if not holders:
            yield Say(("ivr-no-consents",))
            return None
        listing: list[str] = ["ivr-consents-intro"]
        for n, entity in enumerate(holders, start=1):
            listing += ["ivr-business", digit(n), *spell(entity)]
        listing.append("ivr-consents-choose")
        choice = yield from self._pick_from(tuple(listing), 1, "consents", len(holders))
        if choice is None:
            return None
        keys, (n,) = choice
        return (yield from self._save(
            Change(Action.REVOKE, entity=holders[n - 1], prompt="ivr-consents-choose", keys=keys),
            ("ivr-consent-withdrawn",)))

    def _pick_from(
        self, listing: tuple[str, ...], max_digits: int, name: str, count: int,
    ) -> Generator[Step, Any, tuple[str, set[int]] | None]:
        """Ask until the keys pick some of 1..``count``: (keys, numbers); None on back or out of tries."""
        while True:
            keys = yield from self._ask(listing, max_digits, name)
            if keys is None or keys == BACK:
                return None
            if keys == "":
                continue
            picked = _pick(keys, count)
            if picked is None:
                yield from self._invalid()
                continue
            return keys, picked

    def _status(self) -> tuple[str, ...]:
        snap = self._snapshot
        prompts: list[str] = []
        if snap.declines_all:
            prompts.append("ivr-status-declined-all")
        elif snap.declined:
            prompts.append("ivr-status-declined-categories")
            prompts += [category_prompt(c) for c in self.categories if c in snap.declined]
            prompts += [category_prompt(c) for c in sorted(snap.declined - set(self.categories))]
        else:
            prompts.append("ivr-status-none")
        if snap.consents:
            prompts.append("ivr-consents-intro")
            for n, entity in enumerate(snap.consents[:MAX_LIST], start=1):
                prompts += ["ivr-business", digit(n), *spell(entity)]
        else:
            prompts.append("ivr-no-consents")
        return tuple(prompts)


def _pick(keys: str, count: int) -> set[int] | None:
    """The numbers 1..count pressed (each key one number); None if any key is not one of them."""
    picked = set()
    for key in keys:
        if not key.isdigit() or not 1 <= int(key) <= count:
            return None
        picked.add(int(key))
    return picked or None
