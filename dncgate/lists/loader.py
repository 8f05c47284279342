"""Load a list file into a store: parse, normalise, report every bad line, swap in one step."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dncgate.errors import ListError
from dncgate.lists.formats import LineError
from dncgate.lists.invalid import InvalidLines
from dncgate.lists.sync import parse_file, too_big_a_shrink
from dncgate.numbers import DialPlan
from dncgate.store.protocol import ListStore, parse_list_name, stats_of


@dataclass
class LoadSummary:
    list_name: str
    mode: str
    read: int = 0
    loaded: int = 0
    removed: int = 0
    duplicates: int = 0
    version: str = ""
    previous_version: str | None = None
    invalid: InvalidLines = field(default_factory=InvalidLines)  # the first KEPT_INVALID; len(): all


class LoadRefused(ListError):
    """A replace that ``load_file`` will not do, the list left as it was: the file gave no valid
    numbers (a wrong format, an empty archive), or far fewer than the live list holds."""

    def __init__(self, summary: LoadSummary, message: str) -> None:
        super().__init__(message)
        self.summary = summary


async def load_file(
    store: ListStore,
    list_name: str,
    path: Path,
    plan: DialPlan,
    *,
    fmt: str = "auto",
    delta: bool = False,
    progress: Callable[[int], None] | None = None,
    allow_empty: bool = False,
    max_shrink: float | None = None,
    force: bool = False,
    on_invalid: Callable[[LineError], None] | None = None,
    written: Callable[[int, int], None] | None = None,
) -> LoadSummary:
    """Replace ``list_name`` with the file's numbers, or (``delta``) apply its adds and removes.

    The file is parsed exactly as ``lists sync`` parses it (``sync.parse_file``): the snapshot
    fast path, and in a delta the last line for a number wins. A replace is refused
    (``LoadRefused``, nothing changed) when the file gave no valid numbers, unless
    ``allow_empty``; and, with ``max_shrink`` (sync's guard, a fraction), when it would shrink
    the live list by more than that, unless ``force``. Each bad line is passed to ``on_invalid`` as
    it is found (the summary keeps the first ``invalid.KEPT_INVALID``); a file whose lines are mostly
    bad raises ``ListFileError`` (``invalid.GIVE_UP``). ``progress`` is told the lines read so far,
    ``written`` a replace's numbers written so far and the distinct numbers it writes."""
    name = parse_list_name(list_name)
    summary = LoadSummary(name, "delta" if delta else "replace")
    parsed = parse_file(path, fmt, plan, delta=delta, progress=progress, on_invalid=on_invalid)
    summary.read, summary.invalid = parsed.read, parsed.invalid
    if delta:
        summary.duplicates = parsed.superseded
        summary.loaded = await store.add_numbers(name, parsed.adds)
        summary.removed = await store.remove_numbers(name, parsed.removes)
        return summary
    uniq = parsed.distinct_adds()
    parsed.adds = array("q")
    summary.duplicates = uniq.given - len(uniq)
    if not uniq:
        if not allow_empty:
            raise LoadRefused(summary, _empty_message(name, path, summary))
    elif max_shrink is not None and not force:
        live = await stats_of(store, name)
        if (shrink := too_big_a_shrink(len(uniq), live.count if live else 0, max_shrink)) is not None:
            raise LoadRefused(summary, f"{name}: not replaced: {path} {shrink} (--force)")
    total = len(uniq)
    result = await store.replace_list(
        name, uniq, progress=None if written is None else (lambda numbers: written(numbers, total)))
    summary.loaded = result.loaded
    summary.version, summary.previous_version = result.version, result.previous_version
    return summary


def _empty_message(name: str, path: Path, summary: LoadSummary) -> str:
    why = f"all {summary.read:,} lines were invalid" if summary.read else "it has no entries"
    return (f"{name}: not replaced: {path} gave no valid numbers ({why}); is the format right (--format)? "
            "--allow-empty empties the list on purpose")
