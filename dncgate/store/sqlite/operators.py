"""Operator accounts of the console on the SQLite file of the list store (``dncgate.operators``).

Its own connection on its own thread (``tx.WorkerStore``); one row an account, the record as JSON.
"""

from __future__ import annotations

from dncgate.operators import Operator
from dncgate.store.sqlite.tx import WorkerStore, write_transaction

OPERATORS_SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (name TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
"""


class SqliteOperatorStore(WorkerStore):
    """``OperatorStore`` on one SQLite file."""

    schema, part = OPERATORS_SCHEMA, "operators"

    async def operator(self, name: str) -> Operator | None:
        return await self._run(self._get, name)

    def _get(self, name: str) -> Operator | None:
        row = self._c().execute("SELECT record FROM operators WHERE name = ?", (name,)).fetchone()
        return Operator.from_json(row[0]) if row else None

    async def put_operator(self, operator: Operator) -> None:
        await self._run(self._put, operator.name, operator.to_json())

    def _put(self, name: str, record: str) -> None:
        with write_transaction(self._c()) as conn:
            conn.execute("INSERT INTO operators (name, record) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET record = excluded.record", (name, record))

    async def remove_operator(self, name: str) -> bool:
        return await self._run(self._remove, name)

    def _remove(self, name: str) -> bool:
        with write_transaction(self._c()) as conn:
            return conn.execute("DELETE FROM operators WHERE name = ?", (name,)).rowcount > 0

    async def operators(self) -> list[Operator]:
        return await self._run(self._all)

    def _all(self) -> list[Operator]:
        rows = self._c().execute("SELECT record FROM operators ORDER BY name").fetchall()
        return [Operator.from_json(r[0]) for r in rows]
