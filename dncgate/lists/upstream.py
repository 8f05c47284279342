"""Registrations made locally (IVR, API, a reseller's feed) pushed to the national platform.

``Outbox.enqueue_registration(...)`` is the entry point: it normalises the number, stores the
registration durably under an idempotency key (the same key twice is one registration) and
returns the key. ``Pusher`` sends what is due through the sync source's adapter (``push``),
each with its ``Idempotency-Key``, so a retry after a lost reply is not a second registration.
Refused for good (4xx) -> ``refused``; otherwise retried after ``RETRY_BACKOFF`` (2 s doubling to
an hour, half to all of each delay at random) until ``max_attempts`` (20) -> ``failed``. Every
step is a row in the audit trail (``trail()``). The outbox is a small SQLite file local to the
gate (WAL, one writer thread); retries are due by its ``clock`` (the wall clock unless injected).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

from dncgate.backoff import EQUAL_JITTER, Backoff, BackoffPolicy
from dncgate.clock import now_iso
from dncgate.errors import ListError
from dncgate.lists.entries import number_of
from dncgate.lists.sources import PushResult, Registration, SyncSource
from dncgate.numbers import DialPlan
from dncgate.store.sqlite.tx import write_transaction

log = structlog.get_logger("dncgate.lists.upstream")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    key TEXT PRIMARY KEY, number TEXT NOT NULL, action TEXT NOT NULL, channel TEXT NOT NULL,
    category TEXT, at TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, last_error TEXT NOT NULL DEFAULT '', pushed_at TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS registrations_due ON registrations (state, next_at);
CREATE TABLE IF NOT EXISTS trail (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
_MAX_CATEGORY = 1024


class RegistrationError(ListError, ValueError):
    """A registration that cannot be queued (bad number, action or key)."""


RETRY_BACKOFF = Backoff(initial=2.0, factor=2.0, maximum=3600.0, jitter=EQUAL_JITTER)
MAX_ATTEMPTS = 20


class Outbox:
    def __init__(
        self, path: Path, *, region: str = "US", backoff: BackoffPolicy = RETRY_BACKOFF,
        max_attempts: int = MAX_ATTEMPTS, clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` is the wall clock (seconds since the epoch) a retry's due time is kept in."""
        self.path, self.plan = path, DialPlan(region=region)
        self.backoff, self.max_attempts, self.clock = backoff, max_attempts, clock
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dncgate-outbox")
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=2.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
        return self._conn

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def enqueue_registration(
        self, number: str, *, action: str = "add", channel: str, category: str | None = None,
        key: str | None = None, at: str | None = None,
    ) -> str:
        """Queue one registration (``add``) or withdrawal (``remove``); returns its idempotency key."""
        digits = number_of(number.strip(), self.plan)
        if isinstance(digits, str):
            raise RegistrationError(f"number {number!r}: {digits}")
        if action not in ("add", "remove"):
            raise RegistrationError(f"action {action!r} is not add or remove")
        if key is not None and not (0 < len(key) <= 128 and set(key) <= _KEY_CHARS):
            raise RegistrationError("idempotency key: 1-128 letters, digits, '-_.:'")
        if category is not None and not (isinstance(category, str) and len(category) <= _MAX_CATEGORY):
            raise RegistrationError(f"category: a string of at most {_MAX_CATEGORY} characters, or none")
        reg = Registration(key or uuid.uuid4().hex, f"+{digits}", action, channel[:64] or "unknown", at or now_iso(),
                           category or None)
        created = await self._run(self._insert, reg)
        log.info("upstream.queued" if created else "upstream.duplicate", key=reg.key, action=action, channel=channel)
        return reg.key

    def _insert(self, reg: Registration) -> bool:
        with write_transaction(self._db()) as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO registrations (key, number, action, channel, category, at, state, next_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'queued', 0)",
                (reg.key, reg.number, reg.action, reg.channel, reg.category, reg.at),
            )
            created = cursor.rowcount == 1
            db.execute("INSERT INTO trail (key, at, event, detail) VALUES (?, ?, ?, ?)",
                       (reg.key, now_iso(), "queued" if created else "duplicate",
                        f"{reg.action} {reg.number} {reg.channel}"))
        return created

    async def due(self, limit: int, now: float | None = None) -> list[Registration]:
        rows = await self._run(lambda: self._db().execute(
            "SELECT key, number, action, channel, at, category FROM registrations "
            "WHERE state = 'queued' AND next_at <= ? ORDER BY next_at, at LIMIT ?",
            (self.clock() if now is None else now, limit)).fetchall())
        return [Registration(*row) for row in rows]

    async def record(self, results: list[PushResult], now: float | None = None) -> None:
        await self._run(self._record, results, self.clock() if now is None else now)

    def _record(self, results: list[PushResult], now: float) -> None:
        with write_transaction(self._db()) as db:
            for result in results:
                row = db.execute("SELECT attempts FROM registrations WHERE key = ?", (result.key,)).fetchone()
                attempts = (row[0] if row else 0) + 1
                if result.accepted:
                    state, next_at, event = "pushed", 0.0, "pushed"
                elif result.permanent:
                    state, next_at, event = "refused", 0.0, "refused"
                elif attempts >= self.max_attempts:
                    state, next_at, event = "failed", 0.0, "gave_up"
                else:  # attempt 1 failed: the first retry (backoff attempt 0)
                    state, next_at, event = "queued", now + self.backoff.delay(attempts - 1), "retry"
                db.execute("UPDATE registrations SET state = ?, attempts = ?, next_at = ?, last_error = ?, "
                           "pushed_at = CASE WHEN ? THEN ? ELSE pushed_at END WHERE key = ?",
                           (state, attempts, next_at, "" if result.accepted else result.detail, result.accepted,
                            now_iso(), result.key))
                db.execute("INSERT INTO trail (key, at, event, detail) VALUES (?, ?, ?, ?)",
                           (result.key, now_iso(), event, f"attempt {attempts}: {result.detail}"))

    async def counts(self) -> dict[str, int]:
        rows = await self._run(lambda: self._db().execute(
            "SELECT state, count(*) FROM registrations GROUP BY state").fetchall())
        return {str(state): int(n) for state, n in rows}

    async def trail(self, key: str) -> list[tuple[str, str]]:
        """The audit trail of one registration: ``(event, detail)``, oldest first."""
        rows = await self._run(lambda: self._db().execute(
            "SELECT event, detail FROM trail WHERE key = ? ORDER BY seq", (key,)).fetchall())
        return [(str(e), str(d)) for e, d in rows]

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._pool.shutdown(wait=True)


class Pusher:
    """Push due registrations through ``source`` in batches; ``run()`` until stopped."""

    def __init__(self, outbox: Outbox, source: SyncSource, *, batch: int = 100, interval: float = 5.0) -> None:
        self.outbox, self.source, self.batch, self.interval = outbox, source, batch, interval

    async def push_once(self) -> int:
        """Push one batch of what is due; returns how many were accepted."""
        due = await self.outbox.due(self.batch)
        if not due:
            return 0
        results = await self.source.push(due)
        await self.outbox.record(results)
        accepted = sum(r.accepted for r in results)
        failed = [r for r in results if not r.accepted]
        if failed:
            log.warning("upstream.push_failed", accepted=accepted, failed=len(failed), first=failed[0].detail)
        else:
            log.info("upstream.pushed", accepted=accepted)
        return accepted

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while await self.push_once() and not stop.is_set():
                    pass
            except Exception as exc:  # noqa: BLE001 -- a pusher error must not end the service; retried next tick
                log.error("upstream.pusher_error", error=f"{type(exc).__name__}: {exc}")
            try:
                async with asyncio.timeout(self.interval):
                    await stop.wait()
            except TimeoutError:
                pass
