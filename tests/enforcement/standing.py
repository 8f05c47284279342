"""Give an originator a standing in a SQLite file directly (as a case store's append would)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dncgate.store.sqlite.cases import SqliteCaseStore


async def write_standing(path: Path, tenant: str, key: str, value: str) -> None:
    cases = SqliteCaseStore(path)
    await cases.cases(tenant)  # creates the tables
    await cases.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO originator_standing VALUES (?, ?, ?, 'case-1')", (tenant, key, value))
