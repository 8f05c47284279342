"""Enforcement cases on the SQLite list store's file: the case log, the cases, the originators'
standing (read by the list store's one-statement lookup) and complaints.

Its own connection on its own thread. ``append`` is one ``BEGIN IMMEDIATE`` transaction: the log
row (unique by (tenant, idempotency key): a replay is found, not written), the case row and the
standing row (tables in ``schema``; the strictest of the case's and a carrier feed's,
``feed_standings``), so the gate's next lookup sees a suspension as soon as ``append`` returns. The
log is append-only by trigger: no UPDATE, and no DELETE of a record inside the tenant's retention
(``case_meta`` ``purge_before:<tenant>``, which nothing in dncgate moves yet).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import TypeVar

from dncgate.early_warning.alerts import OriginatorKey
from dncgate.enforcement.complaints import Complaint
from dncgate.enforcement.feed_standings import FeedStandings, StandingsApplied
from dncgate.enforcement.model import Case, CaseState, Transition, encode_standing, standing_key
from dncgate.enforcement.protocol import CaseConflict
from dncgate.store.sqlite.feed_standings import apply_standings, bump_version, read_standings, write_enforced
from dncgate.store.sqlite.schema import CASES_SCHEMA
from dncgate.store.sqlite.tx import WorkerStore, paged, write_transaction

_T = TypeVar("_T")

class SqliteCaseStore(WorkerStore):
    """``CaseStore`` on the SQLite file of the list store."""

    schema, part = CASES_SCHEMA, "cases"

    # -- cases ----------------------------------------------------------------------------

    async def append(self, step: Transition, case: Case) -> tuple[Transition, bool]:
        return await self._run(self._append, step, case)

    def _append(self, step: Transition, case: Case) -> tuple[Transition, bool]:
        with write_transaction(self._c()) as conn:
            row = conn.execute("SELECT record FROM case_log WHERE tenant = ? AND idempotency_key = ?",
                               (step.tenant, step.idempotency_key)).fetchone()
            if row is not None:
                return Transition.from_json(row[0]), True
            head = conn.execute("SELECT seq, record FROM case_log WHERE tenant = ? AND case_id = ? "
                                "ORDER BY seq DESC LIMIT 1", (step.tenant, step.case_id)).fetchone()
            head_seq, head_hash = (0, "") if head is None else (int(head[0]), Transition.from_json(head[1]).hash)
            if step.seq != head_seq + 1 or (head is not None and step.prev_hash != head_hash):
                raise CaseConflict(f"case {step.case_id}: at seq {head_seq}, not {step.seq - 1}")
            conn.execute("INSERT INTO case_log (tenant, case_id, seq, idempotency_key, at, record) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (step.tenant, step.case_id, step.seq, step.idempotency_key,
                                                       step.at.isoformat(), step.to_json()))
            bump_version(conn, case.tenant, int(case.updated_at.timestamp() * 1000))  # the standings it serves
            row = (case.tenant, case.case_id, case.key, case.state.value, case.updated_at.isoformat(), case.to_json())
            try:
                conn.execute(
                    "INSERT INTO cases (tenant, case_id, originator, state, updated_at, record) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, case_id) DO UPDATE SET state = excluded.state, "
                    "updated_at = excluded.updated_at, record = excluded.record", row)
            except sqlite3.IntegrityError:
                raise CaseConflict(f"{case.originator} already has an open case") from None
            self._set_standing(conn, case)
        return step, False

    @staticmethod
    def _set_standing(conn: sqlite3.Connection, case: Case) -> None:
        """The row the gate reads: the case's standing, or the carrier feed's where that is stricter."""
        write_enforced(conn, case.tenant, case.key, encode_standing(case), case.case_id)

    async def transition_by_key(self, tenant: str, idempotency_key: str) -> Transition | None:
        row = await self._run(lambda: self._c().execute(
            "SELECT record FROM case_log WHERE tenant = ? AND idempotency_key = ?",
            (tenant, idempotency_key)).fetchone())
        return None if row is None else Transition.from_json(row[0])

    async def case(self, tenant: str, case_id: str) -> Case | None:
        row = await self._run(lambda: self._c().execute(
            "SELECT record FROM cases WHERE tenant = ? AND case_id = ?", (tenant, case_id)).fetchone())
        return None if row is None else Case.from_json(row[0])

    async def open_case(self, originator: OriginatorKey) -> Case | None:
        row = await self._run(lambda: self._c().execute(
            "SELECT record FROM cases WHERE tenant = ? AND originator = ? AND state != 'closed'",
            (originator.tenant, standing_key(originator))).fetchone())
        return None if row is None else Case.from_json(row[0])

    async def cases(self, tenant: str, *, state: CaseState | None = None, limit: int = 100) -> list[Case]:
        rows = await self._run(lambda: self._c().execute(
            "SELECT record FROM cases WHERE tenant = ?1 AND (?2 IS NULL OR state = ?2) "
            "ORDER BY updated_at DESC LIMIT ?3", (tenant, state.value if state else None, limit)).fetchall())
        return [Case.from_json(r[0]) for r in rows]

    async def transitions(self, tenant: str, case_id: str) -> AsyncIterator[Transition]:
        async for record in paged(lambda after: self._run(self._log_page, tenant, case_id, after)):
            yield Transition.from_json(record)

    def _log_page(self, tenant: str, case_id: str, after: int) -> list[tuple[int, str]]:
        return self._c().execute(
            "SELECT seq, record FROM case_log WHERE tenant = ? AND case_id = ? AND seq > ? ORDER BY seq LIMIT 500",
            (tenant, case_id, after)).fetchall()

    # -- the reseller feed's standings (store.sqlite.feed_standings) ---------------------

    async def standings(self, tenant: str) -> FeedStandings:
        return await self._run(read_standings, self._c(), tenant)

    async def apply_feed_standings(self, tenant: str, feed: FeedStandings, *,
                                   accept_older: bool = False) -> StandingsApplied:
        return await self._run(apply_standings, self._c(), tenant, feed, accept_older)

    # -- complaints -----------------------------------------------------------------------

    async def put_complaint(self, complaint: Complaint) -> tuple[Complaint, bool]:
        return await self._run(self._put_complaint, complaint)

    def _put_complaint(self, complaint: Complaint) -> tuple[Complaint, bool]:
        with write_transaction(self._c()) as conn:
            row = conn.execute("SELECT record FROM complaints WHERE tenant = ? AND id = ?",
                               (complaint.tenant, complaint.id)).fetchone()
            if row is not None:
                return Complaint.from_json(row[0]), True
            conn.execute("INSERT INTO complaints (tenant, id, received_at, record) VALUES (?, ?, ?, ?)",
                         (complaint.tenant, complaint.id, complaint.received_at.isoformat(), complaint.to_json()))
        return complaint, False

    async def update_complaint(self, complaint: Complaint) -> None:
        def update() -> None:
            with write_transaction(self._c()) as conn:
                conn.execute("UPDATE complaints SET record = ? WHERE tenant = ? AND id = ?",
                             (complaint.to_json(), complaint.tenant, complaint.id))
        await self._run(update)

    async def complaint(self, tenant: str, complaint_id: str) -> Complaint | None:
        row = await self._run(lambda: self._c().execute(
            "SELECT record FROM complaints WHERE tenant = ? AND id = ?", (tenant, complaint_id)).fetchone())
        return None if row is None else Complaint.from_json(row[0])

    async def complaints(self, tenant: str, *, limit: int = 100) -> list[Complaint]:
        rows = await self._run(lambda: self._c().execute(
            "SELECT record FROM complaints WHERE tenant = ? ORDER BY received_at DESC LIMIT ?",
            (tenant, limit)).fetchall())
        return [Complaint.from_json(r[0]) for r in rows]
