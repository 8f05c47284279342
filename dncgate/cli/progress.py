"""Progress bars on standard error for ``lists load`` and ``lists sync`` (tqdm): shown when standard
error is a terminal, or with ``--progress``; never on standard output, which stays the report.

``lists load`` reads a file of known size: its bar is the share of the file's bytes read (the
file's offset as the operating system keeps it, ``/proc/self/fdinfo``, so a gzip file counts its
compressed bytes and every format counts alike), with the rate and the time left; then a second
bar, the numbers written to the store out of the distinct numbers found. Where the offset cannot
be read (no ``/proc``), the first bar counts lines without a percentage. ``lists sync`` shows the
numbers of the snapshot written out of its size.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Never, TextIO, TypeAlias

from tqdm import tqdm

FDS = Path("/proc/self/fd")


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar with percentage and time left on standard error "
                             "(default: when standard error is a terminal)")


def wanted(flag: bool | None, stream: TextIO) -> bool:
    return stream.isatty() if flag is None else flag


def file_offset(path: Path, fds: Path = FDS) -> int | None:
    """How far into ``path`` this process has read (the largest offset of its descriptors on it);
    None when no descriptor is open on it or the system does not say."""
    target = str(path.resolve())
    offsets = []
    with contextlib.suppress(OSError):
        for fd in os.listdir(fds):
            with contextlib.suppress(OSError, ValueError):
                if os.readlink(fds / fd) == target:
                    info = (fds.parent / "fdinfo" / fd).read_text()
                    offsets.append(int(next(line for line in info.splitlines() if line.startswith("pos:"))[4:]))
    return max(offsets) if offsets else None


if TYPE_CHECKING:
    Bar: TypeAlias = tqdm[Never]  # tqdm is generic over what it iterates; these bars iterate nothing


def _bar(total: int | None, unit: str, desc: str, stream: TextIO) -> Bar:
    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, file=stream, dynamic_ncols=True, leave=True)


def _advance(bar: Bar, to: float) -> None:
    bar.update(to - bar.n)


@dataclass
class LoadBars:
    """The bars of one ``lists load``: reading ``path`` (bytes), then writing to the store (numbers)."""

    path: Path
    stream: TextIO
    _reading: Bar | None = None
    _writing: Bar | None = None
    _sized: bool = True  # the file's offset can be read: the reading bar is in bytes, with a total

    def read(self, lines: int) -> None:
        offset = file_offset(self.path) if self._sized else None
        bar = self._reading
        if bar is None:
            self._sized = offset is not None
            total = self.path.stat().st_size if self._sized else None
            bar = self._reading = _bar(total, "B" if self._sized else " lines", "reading", self.stream)
        if not self._sized:
            _advance(bar, lines)
            return
        if offset is not None:
            _advance(bar, offset)
        bar.set_postfix_str(f"{lines:,} lines", refresh=False)

    def written(self, numbers: int, total: int) -> None:
        if self._reading is not None:
            if self._sized and self._reading.total is not None:
                _advance(self._reading, self._reading.total)  # the file is read to its end
            self._reading.close()
            self._reading = None
        if self._writing is None:
            self._writing = _bar(total, " numbers", "writing", self.stream)
        _advance(self._writing, numbers)

    def close(self) -> None:
        for bar in (self._reading, self._writing):
            if bar is not None:
                bar.close()


@contextlib.contextmanager
def load_progress(path: Path, flag: bool | None, stream: TextIO | None = None) -> Iterator[LoadBars | None]:
    stream = stream or sys.stderr
    if not wanted(flag, stream):
        yield None
        return
    bars = LoadBars(path, stream)
    try:
        yield bars
    finally:
        bars.close()


@dataclass
class WriteBar:
    """The bar of a sync's snapshot: numbers written out of the snapshot's distinct numbers."""

    stream: TextIO
    _bar: Bar | None = None

    def __call__(self, numbers: int, total: int) -> None:
        if self._bar is None:
            self._bar = _bar(total, " numbers", "writing", self.stream)
        _advance(self._bar, numbers)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def sync_progress(flag: bool | None, stream: TextIO | None = None) -> Iterator[WriteBar | None]:
    stream = stream or sys.stderr
    if not wanted(flag, stream):
        yield None
        return
    bar = WriteBar(stream)
    try:
        yield bar
    finally:
        bar.close()
