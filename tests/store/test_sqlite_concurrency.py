"""SQLite store under concurrent writers on one file (several processes: server sync, CLI load, the ledger).

Each test stands in for the other process with a second ``SqliteListStore`` or a plain ``sqlite3``
connection on the same file, and orders the two with events instead of sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dncgate.audit_record import AuditRecord
from dncgate.store.errors import StoreUnavailable
from dncgate.store.sqlite import SqliteListStore

OLD = 8613800000000
LISTED = 8613800000001
OTHER = 8613900000001
X = 8613999999999
# A hang guard, not a timing bound: every wait below is for an event that the other side sets
# as soon as it gets there; only a broken test would wait this long (a busy machine does not).
WAIT = 60.0


class FeedBroke(Exception):
    """A load's source failing half-way (raised from the progress callback, inside the transaction)."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "dnc.sqlite3"


@pytest.fixture
async def stores(path: Path) -> AsyncIterator[tuple[SqliteListStore, SqliteListStore]]:
    a, b = SqliteListStore(path), SqliteListStore(path)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


@contextmanager
def plain(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=0.1, isolation_level=None, check_same_thread=False)
    try:
        yield conn
    finally:
        conn.close()


def live_has(conn: sqlite3.Connection, number: int, name: str = "national") -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM numbers n JOIN lists l ON n.version = l.version "
        "WHERE l.name = ? AND n.number = ?)",
        (name, number),
    ).fetchone()
    return bool(row[0])


def when_waiting(store: SqliteListStore, event: threading.Event) -> None:
    """Set ``event`` when the store's writer starts a statement that waits for the write lock."""
    store._writer_conn().set_trace_callback(
        lambda sql: event.set() if sql.startswith(("BEGIN", "DELETE", "INSERT", "UPDATE")) else None
    )


def held_until(inside: threading.Event, release: threading.Event) -> Callable[[int], None]:
    """A progress callback that pauses a load inside its write transaction until ``release``."""

    def progress(_: int) -> None:
        inside.set()
        if not release.wait(WAIT):
            raise AssertionError("the other writer never got to its statement")

    return progress


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, WAIT)


def short_busy_timeout(store: SqliteListStore) -> None:
    store._writer_conn().execute("PRAGMA busy_timeout=100")


# -- a second load while one is running -------------------------------------------------------


async def test_second_load_never_empties_the_version_the_first_made_live(
    stores: tuple[SqliteListStore, SqliteListStore], path: Path
) -> None:
    a, b = stores
    await a.replace_list("national", [OLD])
    a_inside, b_waiting = threading.Event(), threading.Event()
    seen_during_b: list[bool] = []

    def b_progress(_: int) -> None:  # B is loading: A's load, finished before B started writing, must serve
        with plain(path) as conn:
            seen_during_b.append(live_has(conn, LISTED))

    task_a = asyncio.create_task(
        a.replace_list("national", [LISTED + i for i in range(10)], progress=held_until(a_inside, b_waiting))
    )
    await wait_for(a_inside)
    when_waiting(b, b_waiting)
    task_b = asyncio.create_task(b.replace_list("national", [OTHER], progress=b_progress))
    result_a, result_b = await asyncio.gather(task_a, task_b, return_exceptions=True)
    assert seen_during_b == [True]
    assert not isinstance(result_a, BaseException)
    assert not isinstance(result_b, BaseException)
    assert result_b.previous_version == result_a.version
    with plain(path) as conn:
        assert live_has(conn, OTHER)
        assert not live_has(conn, LISTED)
        stale = conn.execute("SELECT count(*) FROM numbers n JOIN lists l ON n.version != l.version").fetchone()
        assert stale == (0,)


async def test_a_failed_second_load_leaves_the_live_list_whole(
    stores: tuple[SqliteListStore, SqliteListStore], path: Path
) -> None:
    a, b = stores
    a_inside, b_waiting = threading.Event(), threading.Event()

    def b_fails(_: int) -> None:
        raise FeedBroke

    task_a = asyncio.create_task(
        a.replace_list("national", [LISTED, LISTED + 1], progress=held_until(a_inside, b_waiting))
    )
    await wait_for(a_inside)
    when_waiting(b, b_waiting)
    task_b = asyncio.create_task(b.replace_list("national", [OTHER], progress=b_fails))
    result_a, result_b = await asyncio.gather(task_a, task_b, return_exceptions=True)
    assert not isinstance(result_a, BaseException)
    assert isinstance(result_b, FeedBroke)
    assert (await a.facts("acme", LISTED)).national is not None
    with plain(path) as conn:
        assert conn.execute("SELECT count FROM lists WHERE name = 'national'").fetchone() == (2,)


async def test_rows_of_a_build_that_died_are_freed_by_the_next_load(
    stores: tuple[SqliteListStore, SqliteListStore], path: Path
) -> None:
    a, _ = stores
    live = await a.replace_list("national", [OLD])
    with plain(path) as conn:  # what a load in an older release left behind when its process died
        dead = conn.execute(
            "INSERT INTO versions (list_name, state, created_at) VALUES ('national', 'building', '2020-01-01')"
        ).lastrowid
        conn.execute("INSERT INTO numbers (version, number) VALUES (?, ?), (?, ?)", (dead, X, dead, X + 1))
    result = await a.replace_list("national", [LISTED])
    assert result.previous_version == live.version
    with plain(path) as conn:
        assert conn.execute("SELECT count(*) FROM numbers WHERE version = ?", (dead,)).fetchone() == (0,)
        assert conn.execute("SELECT state FROM versions WHERE id = ?", (dead,)).fetchone() == ("abandoned",)
        assert conn.execute("SELECT version, count(*) FROM numbers GROUP BY version").fetchall() == [
            (int(result.version), 1)
        ]


# -- a write that fails leaves no transaction open --------------------------------------------


async def test_a_load_that_fails_inside_its_transaction_leaves_the_writer_usable(
    stores: tuple[SqliteListStore, SqliteListStore], path: Path
) -> None:
    a, _ = stores

    def fails(_: int) -> None:
        raise FeedBroke

    with pytest.raises(FeedBroke):
        await a.replace_list("tenant:acme", [LISTED], progress=fails)
    assert a._writer is not None
    assert not a._writer.in_transaction
    await a.replace_list("tenant:acme", [OTHER])
    await a.set_prefix_rule("national", "+86170")
    with plain(path) as conn:
        assert live_has(conn, OTHER, "tenant:acme")
        assert conn.execute("SELECT prefix FROM prefix_rules").fetchall() == [("86170",)]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")


async def test_writes_after_a_busy_file_are_committed_and_release_the_lock(
    stores: tuple[SqliteListStore, SqliteListStore], path: Path
) -> None:
    a, _ = stores
    await a.replace_list("national", [LISTED])
    short_busy_timeout(a)
    with plain(path) as other:
        fired: list[str] = []

        def take_lock(sql: str) -> None:  # another process takes the write lock as the load opens its transaction
            if sql.startswith("BEGIN") and not fired:
                fired.append(sql)
                other.execute("BEGIN IMMEDIATE")

        assert a._writer is not None
        a._writer.set_trace_callback(take_lock)
        with pytest.raises(StoreUnavailable, match="locked"):
            await a.replace_list("tenant:acme", [OTHER])
        a._writer.set_trace_callback(None)
        other.execute("COMMIT")
        assert not a._writer.in_transaction
        await a.replace_list("tenant:acme", [OTHER])
        assert await a.add_numbers("national", [X]) == 1
        await a.set_prefix_rule("national", "+86170")
        await a.set_sync_state("national", {"seq": "9"})
        # Committed: another connection sees every write, and can take the write lock (the consent ledger).
        assert live_has(other, OTHER, "tenant:acme")
        assert live_has(other, X)
        assert other.execute("SELECT prefix FROM prefix_rules").fetchall() == [("86170",)]
        assert other.execute("SELECT state FROM sync_state").fetchall() == [('{"seq": "9"}',)]
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")


async def test_audit_append_on_a_busy_file_fails_then_recovers(
    stores: tuple[SqliteListStore, SqliteListStore], path: Path
) -> None:
    a, _ = stores
    await a.replace_list("national", [LISTED])
    short_busy_timeout(a)
    record = AuditRecord(
        decision_id="d1", at="2024-01-01T00:00:00+00:00", tenant="acme", door="cli", account="", trunk="",
        caller_id="", dialled="+8613800000001", callee="+8613800000001", purpose="sales", category=None,
        verdict="block", outcome="blocked", reason="national", list_name="national", list_version="1",
        mode="enforce", sip_code=None, latency_us=1,
    )
    with plain(path) as other:
        other.execute("BEGIN IMMEDIATE")  # e.g. a CLI load in another process
        with pytest.raises(StoreUnavailable, match="locked"):
            await a.append_audit([record])
        other.execute("COMMIT")
        assert a._writer is not None
        assert not a._writer.in_transaction
        await a.append_audit([record])
        assert other.execute("SELECT count(*) FROM audit").fetchone() == (1,)
        assert await a.audit_tail(5) == [record]
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")


# -- an edit racing a load --------------------------------------------------------------------


async def test_add_racing_a_load_lands_in_the_version_that_goes_live(
    stores: tuple[SqliteListStore, SqliteListStore], path: Path
) -> None:
    a, b = stores
    await a.replace_list("national", [OLD])
    a_inside, b_waiting = threading.Event(), threading.Event()
    task_a = asyncio.create_task(
        a.replace_list("national", [LISTED, LISTED + 1], progress=held_until(a_inside, b_waiting))
    )
    await wait_for(a_inside)
    when_waiting(b, b_waiting)
    added = await b.add_numbers("national", [X])
    result_a = await task_a
    assert added == 1
    assert (await a.facts("acme", X)).national is not None
    with plain(path) as conn:
        assert conn.execute("SELECT version, count FROM lists").fetchall() == [(int(result_a.version), 3)]


async def test_remove_racing_a_load_lands_in_the_version_that_goes_live(
    stores: tuple[SqliteListStore, SqliteListStore], path: Path
) -> None:
    a, b = stores
    await a.replace_list("national", [OLD, LISTED])
    a_inside, b_waiting = threading.Event(), threading.Event()
    task_a = asyncio.create_task(
        a.replace_list("national", [LISTED, LISTED + 1], progress=held_until(a_inside, b_waiting))
    )
    await wait_for(a_inside)
    when_waiting(b, b_waiting)
    removed = await b.remove_numbers("national", [LISTED])
    await task_a
    assert removed == 1
    assert (await a.facts("acme", LISTED)).national is None
    with plain(path) as conn:
        assert conn.execute("SELECT count FROM lists").fetchall() == [(1,)]


async def test_a_cancelled_load_stops_in_its_thread_and_close_does_not_wait_for_it(path: Path) -> None:
    store = SqliteListStore(path)
    await store.replace_list("national", [LISTED])
    started, cancelled = threading.Event(), threading.Event()
    written: list[int] = []
    total = 4_000_000

    def progress(loaded: int) -> None:  # holds the load after its first batch until it is cancelled
        written.append(loaded)
        started.set()
        cancelled.wait(WAIT)

    load = asyncio.ensure_future(
        store.replace_list("national", range(8_600_000_000_000, 8_600_000_000_000 + total), progress=progress))
    await wait_for(started)  # the rows are being written
    load.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await load
    cancelled.set()
    await store.close()  # waits for the writer thread, which stops at its next batch
    assert written == [written[0]]  # not one batch after the cancel: the thread did not finish the load
    assert written[0] < total
    with plain(path) as conn:
        assert live_has(conn, LISTED)  # rolled back: the old version still serves
