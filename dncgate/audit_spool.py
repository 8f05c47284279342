"""The audit's write-ahead spool: each decision is one JSON line in a local file before its verdict goes out.

A gate killed with ``kill -9`` loses the audit sink's in-memory queue; the spool keeps it. The
gate appends the record (one ``os.write`` to an ``O_APPEND`` descriptor, no fsync: microseconds)
before the door sends the verdict; a group commit (``fsync`` every ``sync_interval``, in a thread,
off the call's path) bounds what a power loss can take to about one interval of decisions. At
start the segments an earlier process left are replayed into the store (the store drops records
whose decision id it already has), then deleted.

Layout of the spool directory: ``lock`` (flock: one gate per spool) and segments
``audit-<N>.jsonl``, N increasing. The live segment rotates at ``segment_bytes``; a segment is
truncated or deleted once the store has every record in it. The segments are bounded in bytes
(``max_bytes``): beyond that a record is not spooled (its decision log line still carries all of
it) and ``audit.spool_full`` is logged once per episode.

A spool no process owns any more (a worker slot a configuration no longer has, ``dncgate.worker``)
is adopted before a gate opens its own: ``adopt_segments`` renames its segments into the gate's
spool, under both spools' locks, numbered after the gate's own, so they are replayed there, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from dncgate.audit_record import AuditRecord
from dncgate.errors import DncgateError

log = structlog.get_logger("dncgate.audit")

MAX_LINE = 64 * 1024  # a record is a few hundred bytes; a longer line is damage, skipped at replay
_PREFIX, _SUFFIX = "audit-", ".jsonl"


@dataclass(frozen=True, slots=True)
class AuditSpoolConfig:
    """``[audit] spool_dir``, ``spool_max_bytes``, ``spool_sync_ms``: the write-ahead spool."""

    directory: Path
    max_bytes: int = 256 << 20
    sync_interval: float = 0.1


class SpoolError(DncgateError, OSError):
    """The spool directory cannot be used (missing parent, not writable, held by another gate).

    Also an ``OSError``: the CLI reports it like any file it cannot use (exit 2)."""


class Segment:
    """One spool file: how many records it holds and how many of them the store has."""

    def __init__(self, path: Path, size: int = 0) -> None:
        self.path = path
        self.size = size
        self.appended = 0
        self.written = 0
        self.closed = False  # no longer appended to (rotated, or left by an earlier process)


class AuditSpool:
    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int, sync_interval: float) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max_bytes)
        self.sync_interval = sync_interval
        self._lock_fd = -1
        self._fd = -1
        self._active: Segment | None = None
        self._segments: list[Segment] = []  # every segment on disk, oldest first
        self.leftover: list[Segment] = []  # what an earlier process left: to replay
        self._retired: list[int] = []  # descriptors of rotated segments, not yet synced
        self._syncing: asyncio.Future[None] | None = None
        self._dirty = False
        self._full = False
        self._failing = False
        self.unspooled = 0  # records not spooled (full or failing): they are in the log only

    # -- life cycle -----------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, *, max_bytes: int, segment_bytes: int = 4 << 20,
             sync_interval: float = 0.1) -> AuditSpool:
        """Create the directory (not its parents), take its lock and find what an earlier process left."""
        spool = cls(directory, max_bytes=max_bytes, segment_bytes=segment_bytes, sync_interval=sync_interval)
        try:
            directory.mkdir(mode=0o750, exist_ok=True)
            spool._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise SpoolError(f"audit spool {directory}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(spool._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(spool._lock_fd)
            raise SpoolError(f"audit spool {directory}: in use by another dncgate serve") from None
        for path in sorted(directory.glob(f"{_PREFIX}*{_SUFFIX}"), key=_number):
            segment = Segment(path, path.stat().st_size)
            segment.closed = True
            spool._segments.append(segment)
            spool.leftover.append(segment)
        if not spool._rotate():
            os.close(spool._lock_fd)
            raise SpoolError(f"audit spool {directory}: cannot create a segment file")
        return spool

    async def close(self) -> None:
        """Sync and close; a segment the store has all of is deleted, the rest stay for the next start."""
        if self._syncing is not None:
            with contextlib.suppress(OSError):
                await self._syncing
            self._syncing = None
        retired, self._retired = self._retired, []
        try:
            self.sync(retired)
        except OSError as exc:
            log.warning("audit.spool_sync_failed", directory=str(self.directory), error=str(exc))
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for segment in list(self._segments):
            segment.closed = True
            self._release_if_done(segment)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # -- the call's path ------------------------------------------------------------------

    def append(self, record: AuditRecord) -> Segment | None:
        """Write one record; the segment it went to, or None when it could not be spooled."""
        line = (record.to_json() + "\n").encode()
        if (self._active is None or self._active.size >= self.segment_bytes) and not self._rotate():
            self._not_spooled(record, full=False, why="no spool file could be opened")
            return None
        segment = self._active
        assert segment is not None
        if self.size + len(line) > self.max_bytes:
            self._not_spooled(record, full=True, why=f"the spool holds {self.size} bytes")
            return None
        try:
            os.write(self._fd, line)
        except OSError as exc:
            self._not_spooled(record, full=False, why=str(exc))
            return None
        if self._full or self._failing:
            log.warning("audit.spool_resumed", directory=str(self.directory), unspooled=self.unspooled)
            self._full = self._failing = False
        segment.size += len(line)
        segment.appended += 1
        self._dirty = True
        return segment

    def _not_spooled(self, record: AuditRecord, *, full: bool, why: str) -> None:
        """Logged once per episode: each record's decision log line carries it whole meanwhile."""
        self.unspooled += 1
        if full and not self._full:
            self._full = True
            log.error("audit.spool_full", directory=str(self.directory), error=why, max_bytes=self.max_bytes,
                      decision_id=record.decision_id)
        elif not full and not self._failing:
            self._failing = True
            log.error("audit.spool_failed", directory=str(self.directory), error=why,
                      decision_id=record.decision_id)

    @property
    def size(self) -> int:
        return sum(s.size for s in self._segments)

    # -- the store has records ------------------------------------------------------------

    def written(self, segment: Segment, count: int = 1) -> None:
        segment.written += count
        self._release_if_done(segment)

    def _release_if_done(self, segment: Segment) -> None:
        if segment.written < segment.appended or (segment.closed and segment in self.leftover):
            return  # a leftover segment is released by replay_done(): its count is unknown until read
        try:
            if segment.closed:
                segment.path.unlink(missing_ok=True)
                self._segments.remove(segment)
            elif segment.size:
                os.ftruncate(self._fd, 0)
                segment.size = segment.appended = segment.written = 0
        except OSError as exc:
            log.warning("audit.spool_release_failed", path=str(segment.path), error=str(exc))

    def replay_done(self, segment: Segment) -> None:
        """Every record of a leftover segment is in the store: delete it."""
        self.leftover.remove(segment)
        segment.path.unlink(missing_ok=True)
        if segment in self._segments:
            self._segments.remove(segment)

    def _rotate(self) -> bool:
        """Start a new live segment (the old one is deleted once the store has all of it)."""
        previous = self._active
        number = max((_number(s.path) for s in self._segments), default=0) + 1
        path = self.directory / f"{_PREFIX}{number}{_SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError:
            return False
        if self._fd >= 0:
            self._retired.append(self._fd)  # the next group commit syncs and closes it
        self._fd = fd
        self._active = Segment(path)
        self._segments.append(self._active)
        self._dirty = True
        if previous is not None:
            previous.closed = True
            self._release_if_done(previous)
        return True

    # -- group commit ---------------------------------------------------------------------

    def sync(self, retired: list[int] | None = None) -> None:
        """fsync the rotated segments (then close them), the live one and the directory (blocking)."""
        failed: OSError | None = None
        for fd in retired or ():
            try:
                os.fsync(fd)
            except OSError as exc:
                failed = exc
            finally:
                os.close(fd)
        if self._fd >= 0:
            os.fsync(self._fd)
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        if failed is not None:
            raise failed

    async def run_group_commit(self) -> None:
        """Every ``sync_interval``, fsync what was appended since the last one (until cancelled)."""
        while True:
            await asyncio.sleep(self.sync_interval)
            if self._dirty:
                await self.commit()

    async def commit(self) -> None:
        """One group commit, in a thread; close() waits for one that a cancelled caller left running."""
        self._dirty = False
        retired, self._retired = self._retired, []
        self._syncing = asyncio.ensure_future(asyncio.to_thread(self.sync, retired))
        try:
            await asyncio.shield(self._syncing)
        except OSError as exc:
            log.warning("audit.spool_sync_failed", directory=str(self.directory), error=str(exc))


def read_segment(path: Path, batch_size: int) -> Iterator[list[AuditRecord]]:
    """The records of a spool file in batches; damaged lines (a torn last write) are logged and skipped."""
    bad = 0
    batch: list[AuditRecord] = []
    with path.open("rb") as file:
        while line := file.readline(MAX_LINE + 1):
            if not line.endswith(b"\n"):
                bad += 1
                while line and not line.endswith(b"\n"):  # skip the rest of an over-long line
                    line = file.readline(MAX_LINE + 1)
                continue
            try:
                batch.append(AuditRecord.from_json(line))
            except (ValueError, TypeError):
                bad += 1
                continue
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch
    if bad:
        log.warning("audit.spool_damaged_lines", path=str(path), skipped=bad)


def adopt_segments(orphan: Path, own: Path) -> int | None:
    """Move the segments of the spool ``orphan`` into the spool ``own`` (not open yet), both locked
    meanwhile; how many, or None when a live gate holds ``orphan`` (left alone, logged). Each segment
    is renamed (in one place at any moment), numbered after every segment ``own`` has.
    Raises SpoolError when ``own`` is held by another gate or a file cannot be moved."""
    if not _segment_paths(orphan):
        return 0
    try:
        own.mkdir(mode=0o750, exist_ok=True)
        with _held(own) as own_held, _held(orphan) as orphan_held:
            if not own_held:
                raise SpoolError(f"audit spool {own}: in use by another dncgate serve")
            if not orphan_held:
                log.info("audit.orphan_spool_busy", orphan=str(orphan), spool=str(own),
                         detail="held by a running gate: left to it")
                return None
            number = max((_number(path) for path in _segment_paths(own)), default=0)
            moved = _segment_paths(orphan)
            for path in moved:
                number += 1
                os.rename(path, own / f"{_PREFIX}{number}{_SUFFIX}")
            for directory in (own, orphan):
                _sync_directory(directory)
    except OSError as exc:
        raise SpoolError(f"audit spool {orphan}: cannot move its segments to {own}: {exc.strerror or exc}") from None
    return len(moved)


@contextlib.contextmanager
def _held(directory: Path) -> Iterator[bool]:
    """The spool's lock, while the block runs: whether it was free (never waits)."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)  # releases the lock


def _segment_paths(directory: Path) -> list[Path]:
    return sorted((p for p in directory.glob(f"{_PREFIX}*{_SUFFIX}") if p.is_file()), key=_number)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _number(path: Path) -> int:
    digits = path.name.removeprefix(_PREFIX).removesuffix(_SUFFIX)
    return int(digits) if digits.isdigit() else 0


def open_spool(config: AuditSpoolConfig | None) -> AuditSpool | None:
    """The spool ``[audit]`` names, or None (logged) when ``spool_dir = ""`` turns it off."""
    if config is None:
        log.warning("audit.spool_disabled", detail="a killed gate loses its queued audit records")
        return None
    return AuditSpool.open(config.directory, max_bytes=config.max_bytes, sync_interval=config.sync_interval)
