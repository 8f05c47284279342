"""Load a list file into a store: parse, normalise, report every bad line, swap in one step."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from dncgate.lists.formats import Entry, LineError, read_entries
from dncgate.numbers import DialPlan, InvalidNumber, Subscriber, normalise
from dncgate.store.protocol import ListStore, parse_list_name

_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


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
    invalid: list[LineError] = field(default_factory=list)


def number_of(text: str, plan: DialPlan) -> int | str:
    """The E.164 integer for a list entry, or why it is not one.

    ``+`` forms take a fast path (a known country code and 8-15 digits): national lists ship
    millions of them and full validation costs ~20 us each. Anything else is normalised like a
    dialled number under ``plan``.
    """
    if text.startswith("+") and text[1:].isascii() and text[1:].isdigit() and 8 <= len(text) - 1 <= 15:
        digits = text[1:]
        if any(int(digits[:n]) in _COUNTRY_CODES for n in (1, 2, 3)):
            return int(digits)
        return "unknown country code"
    result = normalise(text, plan)
    if isinstance(result, Subscriber):
        return result.digits
    if isinstance(result, InvalidNumber):
        return result.detail
    return "a short or emergency number, not a subscriber"


def entry_number(entry: Entry | LineError, plan: DialPlan) -> tuple[int, Entry] | LineError:
    """A parsed entry with its E.164 integer, or the line error to report for it."""
    if isinstance(entry, LineError):
        return entry
    number = number_of(entry.number, plan)
    return LineError(entry.line, entry.number, number) if isinstance(number, str) else (number, entry)


async def load_file(
    store: ListStore,
    list_name: str,
    path: Path,
    plan: DialPlan,
    *,
    fmt: str = "auto",
    delta: bool = False,
    progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Replace ``list_name`` with the file's numbers, or (``delta``) apply its adds and removes."""
    name = parse_list_name(list_name)
    summary = LoadSummary(name, "delta" if delta else "replace")
    adds: list[int] = []
    removes: list[int] = []
    for item in _numbers(read_entries(path, fmt), plan, summary, progress):
        number, entry = item
        if entry.action == "remove":
            if not delta:
                summary.invalid.append(LineError(entry.line, entry.number, "remove in a full snapshot"))
                continue
            removes.append(number)
        else:
            adds.append(number)
    if delta:
        summary.loaded = await store.add_numbers(name, sorted(set(adds)))
        summary.removed = await store.remove_numbers(name, sorted(set(removes)))
        summary.duplicates = len(adds) - len(set(adds))
        return summary
    result = await store.replace_list(name, adds)
    summary.loaded, summary.duplicates = result.loaded, result.duplicates
    summary.version, summary.previous_version = result.version, result.previous_version
    return summary


def _numbers(
    entries: Iterator[Entry | LineError],
    plan: DialPlan,
    summary: LoadSummary,
    progress: Callable[[int], None] | None,
) -> Iterator[tuple[int, Entry]]:
    for entry in entries:
        summary.read += 1
        if progress is not None and summary.read % 10_000 == 0:
            progress(summary.read)
        checked = entry_number(entry, plan)
        if isinstance(checked, LineError):
            summary.invalid.append(checked)
        else:
            yield checked
    if progress is not None:
        progress(summary.read)
