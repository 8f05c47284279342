"""A file's bad lines, bounded: the first ``keep`` kept, every one counted and passed on.

A hostile or mistaken file can have millions of bad lines (1,000,000 of them took 258 MB as a
list). :class:`InvalidLines` keeps a sample for the report, counts them all, hands each to a
``sink`` (``lists load --errors FILE`` writes them there as they come), and :class:`InvalidShare`
gives up on a file once most of its lines are bad: a wrong format, not a list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dncgate.lists.formats import LineError, ListFileError
from dncgate.sequences import Held

KEPT_INVALID = 1000  # bad lines kept for the report; the rest are counted (and go to the sink)


@dataclass(frozen=True, slots=True)
class InvalidShare:
    """Give up on a file when, after at least ``after_lines`` lines, more than ``max_share`` are bad."""

    after_lines: int = 10_000
    max_share: float = 0.5

    def check(self, read: int, invalid: int, path: object) -> None:
        if read >= self.after_lines and invalid > read * self.max_share:
            raise ListFileError(f"{path}: {invalid:,} of the first {read:,} lines are invalid (more than "
                                f"{self.max_share:.0%}): is it a list file, and is the format right (--format)?")


GIVE_UP = InvalidShare()  # what lists load and lists sync apply


class InvalidLines(Held[LineError, list[LineError]]):
    """Bad lines as a bounded sequence: ``len()`` is how many there were, iteration and indexing see
    the first ``keep`` (in file order)."""

    def __init__(self, keep: int = KEPT_INVALID, sink: Callable[[LineError], None] | None = None) -> None:
        self._kept: list[LineError] = []
        self._keep = keep
        self.count = 0
        self.sink = sink

    def append(self, error: LineError) -> None:
        self.count += 1
        if len(self._kept) < self._keep:
            self._kept.append(error)
        if self.sink is not None:
            self.sink(error)

    def __iadd__(self, other: InvalidLines) -> InvalidLines:
        """Another file's bad lines after these (the sample stays bounded; a sink saw them already)."""
        self.count += other.count
        self._kept.extend(other._kept[: max(self._keep - len(self._kept), 0)])
        return self

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def _held(self) -> list[LineError]:
        return self._kept

    @property
    def complete(self) -> bool:
        """Whether every bad line is in the sample."""
        return self.count == len(self._kept)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InvalidLines):
            return self.count == other.count and self._kept == other._kept
        if isinstance(other, list):
            return self.complete and self._kept == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"InvalidLines(count={self.count}, kept={self._kept[:3]!r}{'...' if len(self._kept) > 3 else ''})"
