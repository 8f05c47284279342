"""The one way dncgate writes to a SQLite file: an immediate transaction that always ends."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from dncgate.store.errors import StoreCorrupt, StoreUnavailable

_T = TypeVar("_T")


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error.

    The write lock is taken up front, so a busy file fails at BEGIN with nothing open; whatever
    fails later (a locked file, a bad parameter, a full disk, a cancelled thread) is rolled back,
    so the connection is never left inside a transaction that would turn every later write into
    "cannot start a transaction within a transaction" and hold the lock other connections need.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:  # rolled back and re-raised: nothing is swallowed
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


async def paged(fetch: Callable[[int], Awaitable[list[tuple[int, str]]]]) -> AsyncIterator[str]:
    """Every record of a log read page by page: ``fetch(after)`` returns the next ``(seq, record)`` rows
    with ``seq > after`` in order, none at the end (each page is bounded by its query's LIMIT)."""
    after = 0
    while rows := await fetch(after):
        for seq, record in rows:
            after = int(seq)
            yield record


class Worker:
    """One connection on its own thread for a part of the SQLite file (the ledger, the cases): opened
    on first use with the part's schema; SQLite's errors become ``StoreError``s, others pass through."""

    def __init__(self, path: Path, schema: str, name: str) -> None:
        self.path, self.schema, self.name = path, schema, name
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"dncgate-{name}")
        self.conn: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        if self.conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=2.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=2000")
            conn.executescript(self.schema)
            self.conn = conn
        return self.conn

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite {self.name} {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupt(f"sqlite {self.name} {self.path}: {exc}") from exc
        except RuntimeError as exc:  # executor shut down: closed
            raise StoreUnavailable(f"sqlite {self.name} {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self.conn is not None:
            await asyncio.get_running_loop().run_in_executor(self.pool, self.conn.close)
            self.conn = None
        self.pool.shutdown(wait=True)


class WorkerStore:
    """A part of the SQLite file served by its own :class:`Worker`: a subclass names its ``schema``
    and ``part`` (the thread's and the errors' name); ``_c()`` is the connection, ``_run(fn, *args)``
    runs ``fn`` on the part's thread."""

    schema: ClassVar[str]
    part: ClassVar[str]

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._worker = Worker(self.path, self.schema, self.part)
        self._c = self._worker.connection
        self._run = self._worker.run

    async def close(self) -> None:
        await self._worker.close()
