"""The embedded default store: one SQLite file, no server.

Two connections, each on its own thread so the event loop never blocks on the file: a reader
for lookups (WAL gives it a consistent snapshot per transaction, even while a load runs) and a
writer for loads, edits and audit. A snapshot is written as a new version beside the live one;
``lists.version`` is the pointer, flipped in the write transaction that wrote the rows (so other
processes on the file never see a build half-done), then the old rows are deleted. Every write
runs in ``write_transaction``: BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any error.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from dncgate.audit_record import AuditRecord
from dncgate.clock import now_iso
from dncgate.consent.facts import NotAConsentState, consent_fact, declined
from dncgate.enforcement.model import standing_of
from dncgate.errors import CaseError
from dncgate.model import Facts, ListHit
from dncgate.store.audit_query import AuditPage, AuditQuery, MinuteCount
from dncgate.store.distinct import MAX_NUMBER
from dncgate.store.errors import StoreCorrupt, StoreError, StoreUnavailable
from dncgate.store.protocol import (
    NATIONAL,
    ListStats,
    LoadResult,
    Progress,
    list_key,
    parse_list_name,
    parse_prefix,
    prefixes_of,
)
from dncgate.store.sqlite import audit_search
from dncgate.store.sqlite.batch import ReadBatcher
from dncgate.store.sqlite.schema import CASES_SCHEMA, CONSENT_SCHEMA, LISTS_SCHEMA, STANDING_KEYS, facts_sql
from dncgate.store.sqlite.tx import write_transaction

_T = TypeVar("_T")
_BATCH = 50_000


def _connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    # mode=rw: the file must exist (a program that only reads never creates an empty store)
    target = str(path) if create else f"{path.absolute().as_uri()}?mode=rw"
    conn = sqlite3.connect(target, timeout=2.0, isolation_level=None, check_same_thread=False, uri=not create)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=2000")
    return conn


class SqliteListStore:
    """``ListStore`` on one SQLite file. ``create``: create the file (and its directory) if it does not
    exist; else opening a missing file fails with ``StoreUnavailable`` (``store.factory`` checks first)."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        self.create = create
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="dncgate-sqlite-read")
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="dncgate-sqlite-write")
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._facts_reads = ReadBatcher(self._reader_pool, self._read_facts)  # one thread hop for many checks

    # -- plumbing -------------------------------------------------------------------------

    def _writer_conn(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = self._open()
        return self._writer

    def _reader_conn(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = self._open()
        return self._reader

    def _open(self) -> sqlite3.Connection:
        if self.create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(self.path, create=self.create)
        # idempotent: whichever connection comes first creates it
        conn.executescript(LISTS_SCHEMA + CONSENT_SCHEMA + CASES_SCHEMA)
        return conn

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[..., _T], *args: Any) -> _T:
        return await self._errors(asyncio.get_running_loop().run_in_executor(pool, fn, *args))

    async def _errors(self, read: Awaitable[_T]) -> _T:
        """``read``'s result; what SQLite raised as the store's errors."""
        try:
            return await read
        except StoreError:
            raise
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupt(f"sqlite {self.path}: {exc}") from exc
        except RuntimeError as exc:  # executor shut down: the store was closed
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    async def _read(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await self._run(self._reader_pool, fn, *args)

    async def _write(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await self._run(self._writer_pool, fn, *args)

    # -- lookups --------------------------------------------------------------------------

    async def facts(self, tenant: str, number: int, *, entity: str = "", originators: Sequence[str] = ()) -> Facts:
        return await self._errors(self._facts_reads((tenant, number, entity, tuple(originators[:STANDING_KEYS]))))

    def _read_facts(self, args: tuple[str, int, str, tuple[str, ...]]) -> Facts:
        return self._facts(*args)

    def _facts(self, tenant_name: str, number: int, entity: str, originators: tuple[str, ...]) -> Facts:
        prefixes = prefixes_of(number)
        keys = originators + ("",) * (STANDING_KEYS - len(originators))
        # One statement is one read transaction: pointers, membership, rules, consent and standing from one snapshot.
        rows = self._reader_conn().execute(
            facts_sql(len(prefixes)), (number, list_key(tenant_name), tenant_name, entity, *prefixes, *keys)
        ).fetchall()
        national = tenant = prefix_rule = None
        national_version = tenant_version = ""
        versions: list[tuple[str, int, int]] = []
        ledger: dict[str, str] = {}
        standing: dict[str, str] = {}
        for name, version, listed, prefix in rows:
            if name == "~standing":  # ('~standing', NULL, originator key, standing)
                standing[listed] = prefix
                continue
            if name[0] == "~":  # the consent ledger's rows: ('~consent', state) and ('~pref', item, value)
                ledger["consent" if name == "~consent" else "block" if listed != "declined" else "declined"] = prefix
                continue
            if prefix is not None:
                prefix_rule = (name, prefix)
                continue
            versions.append((name, version, listed))
            hit = ListHit(name, str(version)) if listed else None
            if name == NATIONAL:
                national, national_version = hit, str(version)
            else:
                tenant, tenant_version = hit, str(version)
        rule = None
        if prefix_rule is not None:
            rule = ListHit(prefix_rule[0], self._version_of(versions, prefix_rule[0]), prefix=prefix_rule[1])
        try:
            consent = consent_fact(ledger.get("consent"), f"sqlite {self.path}")
            suspended, restriction = standing_of(originators, standing)
        except (NotAConsentState, CaseError) as exc:
            raise StoreCorrupt(str(exc)) from exc
        return Facts(
            national=national, tenant_list=tenant, prefix_rule=rule, national_version=national_version,
            tenant_version=tenant_version, consent=consent,
            declined_categories=declined(ledger.get("declined")),
            subscriber_blocks_originator="block" in ledger,
            originator_suspended=suspended, originator_restriction=restriction,
        )

    @staticmethod
    def _version_of(rows: list[tuple[str, int, int]], name: str) -> str:
        return next((str(version) for n, version, _ in rows if n == name), "")

    async def ping(self) -> None:
        await self._read(lambda: self._reader_conn().execute("SELECT 1").fetchone())

    # -- loading --------------------------------------------------------------------------

    async def replace_list(
        self, list_name: str, numbers: Iterable[int], *, progress: Progress | None = None
    ) -> LoadResult:
        name = parse_list_name(list_name)
        # A load runs for seconds in the writer thread; if its caller is cancelled (a shutdown),
        # the thread sees the flag at its next batch and rolls back, instead of holding close().
        abandoned = threading.Event()
        try:
            return await self._write(self._replace, name, numbers, progress, abandoned)
        except asyncio.CancelledError:
            abandoned.set()
            raise

    def _replace(
        self, name: str, numbers: Iterable[int], progress: Progress | None, abandoned: threading.Event,
    ) -> LoadResult:
        def give_up_if_abandoned() -> None:
            if abandoned.is_set():
                raise StoreUnavailable(f"sqlite {self.path}: load of {name} abandoned by its caller")

        given = 0
        unique: set[int] = set()
        for number in numbers:
            given += 1
            unique.add(_checked(number))
            if not given % _BATCH:
                give_up_if_abandoned()
        ordered = sorted(unique)
        conn = self._writer_conn()
        # One transaction from the first row to the flip: no other writer ever sees this build unfinished.
        with write_transaction(conn):
            self._drop_dead(conn, name)
            version = self._new_version(conn, name)
            loaded = 0
            iterator = iter(ordered)
            while batch := list(islice(iterator, _BATCH)):
                give_up_if_abandoned()
                conn.executemany(
                    "INSERT INTO numbers (version, number) VALUES (?, ?)", ((version, n) for n in batch)
                )
                loaded += len(batch)
                if progress is not None:
                    progress(loaded)
            previous = self._flip(conn, name, version, loaded)
        if previous is not None:  # retired by the flip; if this fails, the next load frees it
            with write_transaction(conn):
                conn.execute("DELETE FROM numbers WHERE version = ?", (previous,))
        return LoadResult(name, str(version), loaded, given - loaded, None if previous is None else str(previous))

    @staticmethod
    def _new_version(conn: sqlite3.Connection, name: str) -> int:
        cursor = conn.execute(
            "INSERT INTO versions (list_name, state, created_at) VALUES (?, 'building', ?)", (name, now_iso())
        )
        assert cursor.lastrowid is not None  # an INSERT into a rowid table always sets it
        return cursor.lastrowid

    @staticmethod
    def _flip(conn: sqlite3.Connection, name: str, version: int, count: int) -> int | None:
        """Make ``version`` live and retire the one it replaces (returned), inside the caller's transaction."""
        row = conn.execute("SELECT version FROM lists WHERE name = ?", (name,)).fetchone()
        conn.execute(
            "INSERT INTO lists (name, version, count, loaded_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version, count = excluded.count, "
            "loaded_at = excluded.loaded_at",
            (name, version, count, now_iso()),
        )
        conn.execute("UPDATE versions SET state = 'live' WHERE id = ?", (version,))
        if row is None:
            return None
        conn.execute("UPDATE versions SET state = 'retired' WHERE id = ?", (row[0],))
        return int(row[0])

    @staticmethod
    def _drop_dead(conn: sqlite3.Connection, name: str) -> None:
        """Free the rows of every version of ``name`` but the live one, inside a load's transaction.

        With the write lock held, no other version can be in use: this module commits a build only
        together with its flip. What is left is a build an older release committed as 'building' and
        then died on (marked abandoned), or a retired version whose delete did not run."""
        conn.execute(
            "DELETE FROM numbers WHERE version IN (SELECT id FROM versions WHERE list_name = ?1 "
            "AND id IS NOT (SELECT version FROM lists WHERE name = ?1))", (name,)
        )
        conn.execute(
            "UPDATE versions SET state = CASE state WHEN 'building' THEN 'abandoned' ELSE 'retired' END "
            "WHERE list_name = ?1 AND state IN ('building', 'live') "
            "AND id IS NOT (SELECT version FROM lists WHERE name = ?1)", (name,)
        )

    async def add_numbers(self, list_name: str, numbers: Sequence[int]) -> int:
        name = parse_list_name(list_name)
        return await self._write(self._edit, name, [_checked(n) for n in numbers], True)

    async def remove_numbers(self, list_name: str, numbers: Sequence[int]) -> int:
        name = parse_list_name(list_name)
        return await self._write(self._edit, name, [_checked(n) for n in numbers], False)

    def _edit(self, name: str, numbers: list[int], add: bool) -> int:
        # The live version is read under the write lock: no load can flip it before this commits.
        with write_transaction(self._writer_conn()) as conn:
            row = conn.execute("SELECT version FROM lists WHERE name = ?", (name,)).fetchone()
            if row is None:
                if not add:
                    return 0
                version = self._new_version(conn, name)
                self._flip(conn, name, version, 0)
            else:
                version = int(row[0])
            before = conn.total_changes
            if add:
                conn.executemany(
                    "INSERT OR IGNORE INTO numbers (version, number) VALUES (?, ?)", ((version, n) for n in numbers)
                )
            else:
                conn.executemany(
                    "DELETE FROM numbers WHERE version = ? AND number = ?", ((version, n) for n in numbers)
                )
            changed = conn.total_changes - before
            delta = changed if add else -changed
            conn.execute("UPDATE lists SET count = count + ? WHERE name = ?", (delta, name))
        return changed

    async def set_prefix_rule(self, list_name: str, prefix: str, *, present: bool = True) -> None:
        name = parse_list_name(list_name)
        digits = parse_prefix(prefix)
        await self._write(self._set_rule, name, digits, present)

    def _set_rule(self, name: str, digits: str, present: bool) -> None:
        with write_transaction(self._writer_conn()) as conn:
            if present:
                conn.execute(
                    "INSERT OR IGNORE INTO prefix_rules (list_name, prefix, created_at) VALUES (?, ?, ?)",
                    (name, digits, now_iso()),
                )
            else:
                conn.execute("DELETE FROM prefix_rules WHERE list_name = ? AND prefix = ?", (name, digits))

    async def stats(self) -> list[ListStats]:
        return await self._write(self._stats)

    def _stats(self) -> list[ListStats]:
        conn = self._writer_conn()
        rules = dict(conn.execute("SELECT list_name, count(*) FROM prefix_rules GROUP BY list_name").fetchall())
        result = [
            ListStats(name, str(version), count, loaded_at, rules.pop(name, 0), detail=f"sqlite {self.path}")
            for name, version, count, loaded_at in conn.execute(
                "SELECT name, version, count, loaded_at FROM lists ORDER BY name"
            )
        ]
        result += [ListStats(name, "", 0, "", n, detail="prefix rules only") for name, n in rules.items()]
        return result

    # -- sync state -----------------------------------------------------------------------

    async def sync_state(self, list_name: str) -> dict[str, str]:
        name = parse_list_name(list_name)
        row = await self._write(
            lambda: self._writer_conn().execute("SELECT state FROM sync_state WHERE list_name = ?", (name,)).fetchone()
        )
        if row is None:
            return {}
        try:
            state = json.loads(row[0])
        except ValueError as exc:
            raise StoreCorrupt(f"sqlite {self.path}: sync state of {name}: {exc}") from exc
        return {str(k): str(v) for k, v in state.items()}

    async def set_sync_state(self, list_name: str, state: Mapping[str, str]) -> None:
        name = parse_list_name(list_name)
        data = json.dumps({str(k): str(v) for k, v in state.items()}, sort_keys=True)
        await self._write(self._set_sync_state, name, data)

    def _set_sync_state(self, name: str, data: str) -> None:
        with write_transaction(self._writer_conn()) as conn:
            conn.execute(
                "INSERT INTO sync_state (list_name, state) VALUES (?, ?) "
                "ON CONFLICT (list_name) DO UPDATE SET state = excluded.state", (name, data)
            )

    # -- audit ----------------------------------------------------------------------------

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        rows = [(r.to_json(), r) for r in records]
        await self._write(self._append_audit, rows)

    def _append_audit(self, rows: list[tuple[str, AuditRecord]]) -> None:
        with write_transaction(self._writer_conn()) as conn:
            audit_search.append(conn, rows)  # a record already there (by decision id) is not added again

    async def audit_tail(self, limit: int) -> list[AuditRecord]:
        rows = await self._write(
            lambda: self._writer_conn().execute(
                "SELECT record FROM audit ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        )
        return [AuditRecord.from_json(r[0]) for r in reversed(rows)]

    async def audit_export(self) -> AsyncIterator[AuditRecord]:
        after = 0
        while True:
            rows = await self._write(self._audit_page, after)
            if not rows:
                return
            for seq, record in rows:
                after = seq
                yield AuditRecord.from_json(record)

    def _audit_page(self, after: int) -> list[tuple[int, str]]:
        return self._writer_conn().execute(
            "SELECT seq, record FROM audit WHERE seq > ? ORDER BY seq LIMIT 1000", (after,)
        ).fetchall()

    async def audit_search(self, query: AuditQuery) -> AuditPage:
        return await self._read(lambda: audit_search.search(self._reader_conn(), query))

    async def audit_record(self, decision_id: str) -> AuditRecord | None:
        return await self._read(lambda: audit_search.record(self._reader_conn(), decision_id))

    async def audit_minutes(self, tenants: tuple[str, ...], since: str) -> list[MinuteCount]:
        return await self._read(lambda: audit_search.minutes(self._reader_conn(), tenants, since))

    async def close(self) -> None:
        for pool, attr in ((self._reader_pool, "_reader"), (self._writer_pool, "_writer")):
            conn = getattr(self, attr)
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(pool, conn.close)
                setattr(self, attr, None)
            pool.shutdown(wait=True)


def _checked(number: int) -> int:
    if not isinstance(number, int) or not 0 < number <= MAX_NUMBER:
        raise ValueError(f"not an E.164 number as an integer: {number!r}")
    return number
