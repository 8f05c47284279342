"""The one way dncgate writes to a SQLite file: an immediate transaction that always ends."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


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
