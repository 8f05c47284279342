"""Keep a list in step with its source: full snapshots, sequence-numbered deltas, guarded.

One ``sync_once()``: ask the source for its manifest (conditional: unchanged -> the list is
confirmed fresh); check the signature; plan which files to apply; download and check every one's
SHA-256 before anything is applied; refuse a snapshot that shrinks the list by more than
``max_shrink`` unless forced; load the snapshot beside the live version (the store swaps it in
one step) and apply deltas strictly in sequence order, recording the sequence after each.

Exactly once: the list's sync state (``store.sync_state``) holds the last applied sequence and
the live version it was recorded for. A delta is applied as a set of final per-number actions,
so applying it again after a crash between the edit and the state write changes nothing; a
state recorded for another version than the live one (a crash between a snapshot's swap and the
state write, or a hand load) is not trusted and the next sync loads a full snapshot. A gap in the
delta sequence also falls back to the snapshot.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeVar, get_args

import structlog

from dncgate.clock import now_iso
from dncgate.errors import ListError
from dncgate.lists import fastdelta, fastlines
from dncgate.lists.entries import entry_number, number_of
from dncgate.lists.fastpool import parse_workers
from dncgate.lists.formats import LineError, ListFileError, read_entries
from dncgate.lists.invalid import GIVE_UP, InvalidLines, InvalidShare
from dncgate.lists.manifest import FileEntry, IntegrityError, ListManifest, ManifestError, verify_signature
from dncgate.lists.sources import Fetched, SourceError, SyncSource, Unchanged
from dncgate.numbers import DialPlan
from dncgate.store.distinct import SortedDistinct, sorted_distinct
from dncgate.store.errors import StoreError
from dncgate.store.protocol import ListStore, Progress, parse_list_name, stats_of

log = structlog.get_logger("dncgate.lists.sync")
_T = TypeVar("_T")
PROGRESS_LINES = 10_000
# A snapshot's load as it goes: the numbers written so far, of the snapshot's distinct numbers.
WriteProgress = Callable[[int, int], None]


# Why a sync failed: the failure metric's labels, and (from 10 up, in this order) the exit codes of
# ``dncgate lists sync``, so that serve can count an isolated child's failure by its cause.
FailureCause = Literal["source", "manifest", "signature", "integrity", "shrink", "gap", "format", "store"]
FAILURE_CAUSES: tuple[FailureCause, ...] = get_args(FailureCause)
_FIRST_EXIT_CODE = 10


def exit_code_of(cause: str) -> int:
    """The exit code ``dncgate lists sync`` ends with for ``cause`` (1 for an unknown one)."""
    return _FIRST_EXIT_CODE + FAILURE_CAUSES.index(cause) if cause in FAILURE_CAUSES else 1


def cause_of_exit(code: int) -> str | None:
    """The failure cause a ``dncgate lists sync`` exit code stands for; None for any other code."""
    index = code - _FIRST_EXIT_CODE
    return FAILURE_CAUSES[index] if 0 <= index < len(FAILURE_CAUSES) else None


def too_big_a_shrink(offered: int, live: int, max_shrink: float) -> str | None:
    """Why replacing a list of ``live`` numbers with ``offered`` is refused, or None: the guard
    against a truncated or wrong file that sync and ``lists load`` share."""
    if offered >= live * (1 - max_shrink):
        return None
    return (f"has {offered:,} numbers, the live list {live:,}: a shrink of more than {max_shrink:.0%} "
            "is refused unless forced")


class SyncError(ListError):
    """A sync that did not complete; ``cause`` (one of ``FAILURE_CAUSES``) labels the failure metric."""

    def __init__(self, cause: FailureCause, message: str) -> None:
        super().__init__(message)
        self.cause = cause

    @property
    def exit_code(self) -> int:
        """What ``dncgate lists sync`` ends with for this failure (serve's isolated sync reads the cause back)."""
        return exit_code_of(self.cause)


@dataclass(frozen=True, slots=True)
class SyncJob:
    """What one ``Syncer`` syncs, and how carefully (``lists.runner`` builds it from ``[sync]``)."""

    list_name: str = "national"
    region: str = "US"
    max_shrink: float = 0.05  # a snapshot with fewer than (1 - max_shrink) x the live count is refused
    public_key: bytes | None = None  # Ed25519: when set, manifests must carry a valid signature
    workdir: Path = Path("dncgate-sync")


@dataclass
class SyncReport:
    list_name: str
    outcome: str = "unchanged"  # unchanged (the source confirmed it: HTTP 304) | updated | nothing_new
    sequence: int | None = None
    snapshot: int | None = None  # the sequence of the snapshot loaded, if one was
    deltas: list[int] = field(default_factory=list)
    loaded: int = 0
    added: int = 0
    removed: int = 0
    version: str = ""
    read: int = 0
    invalid: InvalidLines = field(default_factory=InvalidLines)
    seconds: float = 0.0


@dataclass
class Parsed:
    adds: array[int]
    removes: array[int]
    read: int = 0
    invalid: InvalidLines = field(default_factory=InvalidLines)
    categories: int = 0
    superseded: int = 0  # delta lines for a number that a later line of the file overrides
    ascending: bool = False  # adds strictly ascending, as the parse found (a sorted snapshot: no sort)

    def distinct_adds(self) -> SortedDistinct:
        """The adds sorted and distinct, handed over (the caller drops ``adds``): as they are when
        the parse found them strictly ascending (a sorted snapshot: no sort, no walk), else sorted."""
        if self.ascending:
            return SortedDistinct(self.adds, len(self.adds))
        return sorted_distinct(self.adds, hand_over=True)


class Publisher(Protocol):
    """Told what was applied, so a carrier can republish it to its resellers (``lists.feed``)."""

    async def snapshot(self, sequence: int, numbers: Sequence[int]) -> None: ...

    async def delta(self, sequence: int, adds: Sequence[int], removes: Sequence[int]) -> None: ...


class SyncObserver(Protocol):
    def succeeded(self, list_name: str, report: SyncReport, count: int | None) -> None: ...

    def failed(self, list_name: str, cause: str) -> None: ...


def parse_file(
    path: Path, fmt: str, plan: DialPlan, *, delta: bool, progress: Callable[[int], None] | None = None,
    on_invalid: Callable[[LineError], None] | None = None, give_up: InvalidShare | None = GIVE_UP,
) -> Parsed:
    """Numbers of a snapshot (adds only) or a delta (final action per number: the last line wins).

    A snapshot in the one-number-a-line format (plain or gzip) takes ``lists.fastlines``: the
    same numbers and bad lines at ~10x the speed. ``progress`` is told the lines read so far.
    Bad lines: the first ``invalid.KEPT_INVALID`` kept, all counted and each passed to
    ``on_invalid``; ``give_up`` refuses (``ListFileError``) a file whose lines are mostly bad.
    ``lists load`` parses with this too, so a file means the same to both."""
    if delta and fastdelta.applies(path, fmt):
        invalid = InvalidLines(sink=on_invalid)
        adds, removes, read, superseded = fastdelta.parse_delta_fast(
            path, lambda text: number_of(text, plan), invalid=invalid, progress=progress, give_up=give_up)
        return Parsed(adds, removes, read, invalid, superseded=superseded)
    if not delta and fastlines.applies(path, fmt):
        try:
            fast = fastlines.parse_lines_fast(path, lambda text: number_of(text, plan), progress=progress,
                                              invalid=InvalidLines(sink=on_invalid), give_up=give_up,
                                              workers=parse_workers(path.stat().st_size))
            return Parsed(fast.numbers, array("q"), fast.read, fast.invalid, ascending=fast.ascending)
        except fastlines.NotFast:
            pass  # megabytes without a newline: the per-line path reads it with bounded lines
    return parse_entries(path, fmt, plan, delta=delta, progress=progress, on_invalid=on_invalid, give_up=give_up)


def parse_entries(
    path: Path, fmt: str, plan: DialPlan, *, delta: bool, progress: Callable[[int], None] | None = None,
    on_invalid: Callable[[LineError], None] | None = None, give_up: InvalidShare | None = GIVE_UP,
) -> Parsed:
    """``parse_file`` entry by entry (``read_entries``): every format, deltas, and the reference
    that the snapshot fast path must agree with."""
    parsed = Parsed(array("q"), array("q"), invalid=InvalidLines(sink=on_invalid))
    final: dict[int, bool] = {}
    for raw in read_entries(path, fmt):
        parsed.read += 1
        if parsed.read % PROGRESS_LINES == 0:
            if give_up is not None:
                give_up.check(parsed.read, len(parsed.invalid), path)
            if progress is not None:
                progress(parsed.read)
        checked = entry_number(raw, plan)
        if isinstance(checked, LineError):
            parsed.invalid.append(checked)
            continue
        number, entry = checked
        parsed.categories += entry.category is not None
        if delta:
            parsed.superseded += number in final
            final[number] = entry.action == "add"
        elif entry.action == "remove":
            parsed.invalid.append(LineError(entry.line, entry.number, "remove in a full snapshot"))
        else:
            parsed.adds.append(number)
    if delta:
        parsed.adds = array("q", sorted(n for n, add in final.items() if add))
        parsed.removes = array("q", sorted(n for n, add in final.items() if not add))
    if give_up is not None:
        give_up.check(parsed.read, len(parsed.invalid), path)
    if progress is not None:
        progress(parsed.read)
    return parsed


class Syncer:
    def __init__(
        self, store: ListStore, source: SyncSource, settings: SyncJob, *,
        observer: SyncObserver | None = None, publisher: Publisher | None = None,
    ) -> None:
        self.store, self.source, self.settings = store, source, settings
        self.list_name = parse_list_name(settings.list_name)
        self.plan = DialPlan(region=settings.region)
        self.observer, self.publisher = observer, publisher
        self._lock = asyncio.Lock()

    async def sync_once(self, *, force: bool = False, progress: WriteProgress | None = None) -> SyncReport:
        """Apply what the source has that the list lacks. Raises ``SyncError`` (cause, message)."""
        async with self._lock:
            started = time.monotonic()
            try:
                report = await self._sync(force, progress)
            except SyncError as exc:
                log.warning("sync.failed", list_name=self.list_name, source=self.source.name, cause=exc.cause,
                            error=str(exc))
                if self.observer is not None:
                    self.observer.failed(self.list_name, exc.cause)
                raise
            report.seconds = round(time.monotonic() - started, 3)
            count = await self._count()
            log.info("sync.completed", list_name=self.list_name, outcome=report.outcome, sequence=report.sequence,
                     snapshot=report.snapshot, deltas=report.deltas, added=report.added, removed=report.removed,
                     invalid=len(report.invalid), seconds=report.seconds)
            if self.observer is not None:
                self.observer.succeeded(self.list_name, report, count)
            return report

    async def _count(self) -> int | None:
        try:
            live = await stats_of(self.store, self.list_name)
        except StoreError:
            return None
        return live.count if live is not None else None

    async def _live(self) -> tuple[str, int]:
        live = await self._store(stats_of(self.store, self.list_name), "read list stats")
        return (live.version, live.count) if live is not None else ("", 0)

    async def _store(self, work: Awaitable[_T], what: str) -> _T:
        try:
            return await work
        except StoreError as exc:
            raise SyncError("store", f"{what}: {exc}") from None

    async def _sync(self, force: bool, progress: WriteProgress | None) -> SyncReport:
        report = SyncReport(self.list_name)
        state: dict[str, str] = await self._store(self.store.sync_state(self.list_name), "read sync state")
        live_version, live_count = await self._live()
        trusted = bool(live_version) and state.get("version") == live_version and state.get("sequence", "").isdigit()
        sequence = int(state["sequence"]) if trusted else None
        if state and not trusted:
            log.warning("sync.state_untrusted", list_name=self.list_name, state_version=state.get("version"),
                        live_version=live_version, action="a full snapshot will be loaded")
        try:
            fetched = await self.source.manifest(state if trusted else {})
        except SourceError as exc:
            raise SyncError("source", str(exc)) from None
        except ManifestError as exc:
            raise SyncError("manifest", str(exc)) from None
        if fetched is None or isinstance(fetched, Unchanged):
            # Only the source's confirmation that our sequence is current refreshes the age;
            # "nothing new" (an empty drop directory) leaves it to grow, so staleness still fires.
            state["checked_at"] = now_iso()
            if isinstance(fetched, Unchanged):
                state["fresh_at"] = state["checked_at"]
            else:
                report.outcome = "nothing_new"
            if trusted:
                await self._store(self.store.set_sync_state(self.list_name, state), "write sync state")
            report.sequence = sequence
            return report
        outcome = "rejected"
        try:
            self._check(fetched)
            snapshot, deltas = self._plan(fetched.manifest, sequence)
            files = await self._download([e for e in (snapshot, *deltas) if e is not None])
            if snapshot is not None:
                await self._apply_snapshot(snapshot, files[snapshot.file], live_count, force, report, progress)
                sequence, live_version = snapshot.sequence, report.version
            for entry in deltas:
                await self._apply_delta(entry, files[entry.file], live_version, report)
                sequence = entry.sequence
            outcome = "applied"
        except SyncError as exc:
            if exc.cause in ("source", "store"):
                outcome = "retry"
            raise
        finally:
            await self.source.finished(fetched, outcome)
        applied = report.snapshot is not None or bool(report.deltas)
        await self._store(self.store.set_sync_state(
            self.list_name, self._state_after(fetched, state, sequence, live_version, applied=applied)),
            "write sync state")
        report.outcome = "updated" if applied else "nothing_new"
        report.sequence = sequence
        return report

    def _state_after(
        self, fetched: Fetched, before: dict[str, str], sequence: int | None, version: str, *, applied: bool,
    ) -> dict[str, str]:
        """Only something applied refreshes ``fresh_at`` (a re-read manifest at our sequence, as a
        stalled publisher serves, confirms nothing); validators are kept only for a manifest that
        reaches our sequence, so a later 304 for them means "still current" (issue 11 item 3)."""
        checked = now_iso()
        state = {"sequence": str(sequence), "version": version, "checked_at": checked, "source": self.source.name,
                 "generated_at": fetched.manifest.generated_at}
        if applied:
            state["fresh_at"] = checked
        elif before.get("fresh_at"):
            state["fresh_at"] = before["fresh_at"]
        if fetched.manifest.latest_sequence == sequence:
            state.update(fetched.validators)
        return state

    def _check(self, fetched: Fetched) -> None:
        if fetched.manifest.list_name != self.list_name:
            raise SyncError("manifest", f"{fetched.origin}: manifest is for list {fetched.manifest.list_name!r}, "
                                        f"not {self.list_name!r}")
        if self.settings.public_key is not None:
            try:
                verify_signature(fetched.raw, fetched.signature, self.settings.public_key, fetched.origin)
            except ManifestError as exc:
                raise SyncError("signature", str(exc)) from None

    def _plan(self, manifest: ListManifest, sequence: int | None) -> tuple[FileEntry | None, list[FileEntry]]:
        """The snapshot to load (if any) and the deltas to apply after it, in order, without gaps."""
        if sequence is not None:
            pending = [d for d in manifest.deltas if d.sequence > sequence]
            reached = pending[-1].sequence if pending else sequence
            if _contiguous(sequence, pending) and (manifest.snapshot is None or manifest.snapshot.sequence <= reached):
                return None, pending
            log.warning("sync.delta_gap", list_name=self.list_name, applied=sequence,
                        next_delta=pending[0].sequence if pending else None,
                        snapshot=manifest.snapshot.sequence if manifest.snapshot else None)
        if manifest.snapshot is None:
            raise SyncError("gap", f"no snapshot offered and the deltas do not follow sequence {sequence}")
        after = [d for d in manifest.deltas if d.sequence > manifest.snapshot.sequence]
        run: list[FileEntry] = []
        for delta in after:
            if delta.sequence != (run[-1].sequence if run else manifest.snapshot.sequence) + 1:
                log.warning("sync.delta_gap", list_name=self.list_name, applied=manifest.snapshot.sequence,
                            next_delta=delta.sequence, snapshot=manifest.snapshot.sequence)
                break
            run.append(delta)
        return manifest.snapshot, run

    async def _download(self, entries: list[FileEntry]) -> dict[str, Path]:
        files = {}
        for entry in entries:
            try:
                files[entry.file] = await self.source.fetch(entry, self.settings.workdir)
            except SourceError as exc:
                raise SyncError("source", str(exc)) from None
            except IntegrityError as exc:
                log.error("sync.integrity_failed", list_name=self.list_name, file=entry.file, error=str(exc))
                raise SyncError("integrity", str(exc)) from None
        return files

    async def _parse(self, entry: FileEntry, path: Path, *, delta: bool) -> Parsed:
        try:
            parsed = await asyncio.to_thread(parse_file, path, entry.format, self.plan, delta=delta)
        except ListFileError as exc:
            raise SyncError("format", str(exc)) from None
        except Exception as exc:  # a hostile file must fail the sync (counted), never crash the syncer
            log.error("sync.parse_crashed", list_name=self.list_name, file=entry.file, exc_info=True)
            raise SyncError("format", f"{path}: unreadable: {type(exc).__name__}: {exc}") from None
        if parsed.invalid:
            log.warning("sync.invalid_lines", list_name=self.list_name, file=entry.file, invalid=len(parsed.invalid),
                        first=[f"line {e.line}: {e.problem}" for e in parsed.invalid[:5]])
        return parsed

    async def _apply_snapshot(
        self, entry: FileEntry, path: Path, live_count: int, force: bool, report: SyncReport,
        progress: WriteProgress | None,
    ) -> None:
        parsed = await self._parse(entry, path, delta=False)
        report.read += parsed.read
        report.invalid += parsed.invalid
        # Sorted and de-duplicated once, in arrays (no set of 100M ints); the store takes it as is.
        # Handed over: a sorted file's array becomes the list itself, with no copy.
        uniq = await asyncio.to_thread(parsed.distinct_adds)
        parsed.adds = array("q")
        size = len(uniq)
        shrink = too_big_a_shrink(size, live_count, self.settings.max_shrink)
        if shrink is not None and not force:
            log.error("sync.shrink_refused", list_name=self.list_name, live=live_count, offered=size,
                      max_shrink=self.settings.max_shrink, advice="check the source; --force loads it anyway")
            raise SyncError("shrink", f"snapshot {entry.sequence} {shrink}")
        written: Progress | None = None if progress is None else (lambda numbers: progress(numbers, size))
        result = await self._store(self.store.replace_list(self.list_name, uniq, progress=written),
                                   "load snapshot")
        report.snapshot, report.loaded, report.version = entry.sequence, result.loaded, result.version
        log.info("sync.snapshot_applied", list_name=self.list_name, sequence=entry.sequence, version=result.version,
                 loaded=result.loaded, previous_version=result.previous_version, forced=shrink is not None)
        if self.publisher is not None:
            await self.publisher.snapshot(entry.sequence, uniq)

    async def _apply_delta(self, entry: FileEntry, path: Path, version: str, report: SyncReport) -> None:
        parsed = await self._parse(entry, path, delta=True)
        report.read += parsed.read
        report.invalid += parsed.invalid
        added = await self._store(self.store.add_numbers(self.list_name, parsed.adds), "apply delta")
        removed = await self._store(self.store.remove_numbers(self.list_name, parsed.removes), "apply delta")
        if not version:
            version, _ = await self._live()
        state = {"sequence": str(entry.sequence), "version": version, "source": self.source.name}
        await self._store(self.store.set_sync_state(self.list_name, state), "write sync state")
        report.deltas.append(entry.sequence)
        report.added += added
        report.removed += removed
        log.info("sync.delta_applied", list_name=self.list_name, sequence=entry.sequence, added=added,
                 removed=removed, invalid=len(parsed.invalid))
        if self.publisher is not None:
            await self.publisher.delta(entry.sequence, parsed.adds, parsed.removes)


def _contiguous(after: int, deltas: list[FileEntry]) -> bool:
    expected = after + 1
    for delta in deltas:
        if delta.sequence != expected:
            return False
        expected += 1
    return True


ProgressFactory = Callable[[str], Progress | None]
