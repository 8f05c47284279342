"""``Headers``: an event-socket header block as an ordered, read-only mapping that tolerates repeats.

A frame's block arrives as ``Name: value`` lines.  The codec hands a block it validated as plain
(every line ``Name: value``, names printable ASCII without space or colon, ``\\n`` line ends; what
FreeSWITCH sends) to :meth:`Headers.from_block` as it is: a door reads a few of an event's two
hundred headers, so a lookup finds its line in the block and decodes only that value; the pairs are
split out only when something iterates, compares or asks for repeats.  Blocks built any other way
(the line-by-line path, event-json) are given as pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar, overload
from urllib.parse import unquote

__all__ = ["Headers"]

T = TypeVar("T")
Pairs = tuple[tuple[str, str], ...]

# One line of a plain block (the codec checked the whole block against this shape).
_PLAIN_PAIR = re.compile(r"([!-9;-~]+): ?([^\n]*)")


class Headers(Mapping[str, str]):
    """An ordered header block that tolerates repeated names.

    FreeSWITCH repeats some headers (``Hangup-Cause`` appears twice in
    CHANNEL_HANGUP_COMPLETE, in both the plain and the JSON format).  Lookup is
    deterministic: **the first occurrence wins**; every value is kept in
    :meth:`get_all` and names seen more than once are listed in
    :attr:`duplicates`.  Lookup is case-sensitive; :meth:`get_ci` is not.

    :meth:`url_encoded` and :meth:`from_block` keep the values as sent and decode each when it is
    read: a door reads a few of an event's two hundred headers, and decoding the rest was most of
    the codec's time.
    """

    __slots__ = ("_block", "_decoded", "_dups", "_encoded", "_first", "_folded", "_lower", "_memo", "_memo_ci",
                 "_pairs")

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), *, _encoded: bool = False) -> None:
        self._block: bytes | None = None  # "\n" + a plain block (from_block), else None
        self._folded: bytes | None = None  # _block lowercased (same offsets: bytes.lower is ASCII only)
        self._encoded = _encoded
        self._pairs: Pairs | None = tuple(pairs)  # raw (as sent) values
        self._decoded: Pairs | None = None
        self._first: dict[str, str] | None = None  # name -> its first raw value
        self._dups: dict[str, list[str]] = {}
        self._lower: dict[str, str] | None = None  # lowercased name -> first raw value
        # What was looked up in the block, decoded (None: not sent): a door reads a few names, often again.
        self._memo: dict[str, str | None] = {}
        self._memo_ci: dict[str, str | None] = {}

    @classmethod
    def url_encoded(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        """Headers whose values are still URL-encoded (event-socket lines); decoded when read."""
        return cls(pairs, _encoded=True)

    @classmethod
    def from_block(cls, block: bytes) -> Headers:
        """The headers of a non-empty block the codec validated as plain, values URL-encoded."""
        headers = cls((), _encoded=True)
        headers._block = b"\n" + block
        headers._pairs = None
        return headers

    # -- the block, read in place -----------------------------------------

    def _raw_pairs(self) -> Pairs:
        pairs = self._pairs
        if pairs is None:
            assert self._block is not None
            pairs = self._pairs = tuple(_PLAIN_PAIR.findall(self._block.decode("utf-8", errors="replace")))
        return pairs

    def _index(self) -> dict[str, str]:
        """Each name's first raw value (and the repeats in ``_dups``), built on first need."""
        first = self._first
        if first is None:
            pairs = self._raw_pairs()
            first = dict(pairs)  # built in C; right as it is when no name repeats (almost every block)
            if len(first) < len(pairs):
                first = {}
                for name, value in pairs:
                    if name in first:
                        self._dups.setdefault(name, [first[name]]).append(value)
                    else:
                        first[name] = value
            self._first = first
        return first

    def _in_block(self, name: object, fold: bool) -> str | None:
        """The raw value of ``name``'s first line in the block (``fold``: case-insensitively)."""
        block = self._block
        assert block is not None
        if not isinstance(name, str):
            return None
        if fold:
            name = name.lower()
            search = self._folded
            if search is None:
                search = self._folded = block.lower()
        else:
            search = block
        # Every name in the block is ASCII without ":" (the codec checked): no other name is in it.
        if not name.isascii() or ":" in name or "\n" in name:
            return None
        needle = b"\n" + name.encode("ascii") + b":"
        pos = search.find(needle)
        if pos < 0:
            return None
        start = pos + len(needle)
        if block.startswith(b" ", start):
            start += 1
        end = block.find(b"\n", start)
        return block[start : end if end >= 0 else len(block)].decode("utf-8", errors="replace")

    def _lookup(self, name: str, fold: bool) -> str | None:
        """``name``'s first value, decoded (``fold``: case-insensitively); None when it was not sent."""
        if self._block is not None and (fold or self._first is None):
            memo = self._memo_ci if fold else self._memo
            if name in memo:
                return memo[name]
            raw = self._in_block(name, fold)
            value = memo[name] = None if raw is None else self._value(raw)
            return value
        if fold:
            lower = self._lower
            if lower is None:
                # The first of each name case-insensitively: reversed, so an earlier pair overwrites a later one.
                lower = self._lower = {n.lower(): v for n, v in reversed(self._raw_pairs())}
            raw = lower.get(name.lower())
        else:
            raw = self._index().get(name)
        return None if raw is None else self._value(raw)

    def _value(self, raw: str) -> str:
        return unquote(raw, errors="replace") if self._encoded and "%" in raw else raw

    # -- Mapping ------------------------------------------------------------

    def __getitem__(self, name: str) -> str:
        value = self._lookup(name, fold=False)
        if value is None:
            raise KeyError(name)
        return value

    @overload
    def get(self, name: str, /) -> str | None: ...

    @overload
    def get(self, name: str, /, default: str | T) -> str | T: ...

    def get(self, name: str, /, default: str | T | None = None) -> str | T | None:
        value = self._lookup(name, fold=False)
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        if self._first is None and self._block is not None:
            return isinstance(name, str) and self._lookup(name, fold=False) is not None
        return name in self._index()

    def __iter__(self) -> Iterator[str]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self._index())

    def __bool__(self) -> bool:
        return self._block is not None or bool(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({list(self.pairs)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.pairs == other.pairs
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    @property
    def pairs(self) -> Pairs:
        """Every header in wire order, repeats included, decoded."""
        if self._decoded is None:
            raw = self._raw_pairs()
            self._decoded = tuple((name, self._value(value)) for name, value in raw) if self._encoded else raw
        return self._decoded

    @property
    def duplicates(self) -> Mapping[str, tuple[str, ...]]:
        """The names sent more than once, each with all its values in wire order."""
        self._index()
        return {name: tuple(map(self._value, values)) for name, values in self._dups.items()}

    def get_all(self, name: str) -> list[str]:
        return [self._value(v) for k, v in self._raw_pairs() if k == name]

    def get_ci(self, name: str, default: str | None = None) -> str | None:
        value = self._lookup(name, fold=True)
        return default if value is None else value
