"""The consent ledger on the SQLite list store's file (tables in ``schema``).

Its own connection on its own thread; each append is one ``BEGIN IMMEDIATE`` transaction (history
row, current state, chain head, outbox), so a revocation is visible to the store's next lookup as
soon as ``append`` returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from dncgate.consent.ledger import ChainPoint, Clock, check_purge, is_upload, purge_record, utc_now
from dncgate.consent.model import (
    CONSENT_ACTIONS,
    PREFERENCE_ACTIONS,
    ConsentState,
    LedgerEvent,
    Preferences,
    fold_consent,
    fold_preferences,
    iso,
    validate,
)
from dncgate.settings import ConsentSettings
from dncgate.store.sqlite.schema import CONSENT_SCHEMA
from dncgate.store.sqlite.tx import Worker, paged, write_transaction

_T = TypeVar("_T")


class SqliteLedger:
    def __init__(self, path: Path | str, config: ConsentSettings, *, clock: Clock = utc_now) -> None:
        self.path = Path(path)
        self.config = config
        self._clock = clock
        self._worker = Worker(self.path, CONSENT_SCHEMA, "ledger")  # its own connection and thread
        self._c = self._worker.connection
        self._run = self._worker.run

    # -- writes -------------------------------------------------------------------------------

    async def append(self, event: LedgerEvent) -> LedgerEvent:
        validate(event, self.config.categories)
        return await self._run(self._append, event)

    def _append(self, event: LedgerEvent) -> LedgerEvent:
        with write_transaction(self._c()) as conn:
            return self._append_in(conn, event)

    def _append_in(self, conn: sqlite3.Connection, event: LedgerEvent) -> LedgerEvent:
        tenant = event.tenant
        head = ChainPoint.decode(_meta(conn, f"head:{tenant}"))
        now = self._clock()
        if head.recorded_at is not None and head.recorded_at > now:
            now = head.recorded_at  # recorded_at never goes back: a purge deletes a prefix of the chain
        sealed = event.sealed(head.seq + 1, head.hash, now)
        callee = sealed.digits if sealed.callee else None
        conn.execute(
            "INSERT INTO consent_log (tenant, seq, id, recorded_at, callee, event) VALUES (?, ?, ?, ?, ?, ?)",
            (tenant, sealed.seq, sealed.id, iso(now), callee, sealed.to_json()),
        )
        if sealed.action in CONSENT_ACTIONS:
            row = conn.execute(
                "SELECT state FROM consent_current WHERE tenant = ? AND callee = ? AND entity = ?",
                (tenant, callee, sealed.entity),
            ).fetchone()
            state = fold_consent(None if row is None else ConsentState.from_json(row[0]), sealed,
                                 self.config.categories)
            conn.execute(
                "INSERT INTO consent_current (tenant, callee, entity, state) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (tenant, callee, entity) DO UPDATE SET state = excluded.state",
                (tenant, callee, sealed.entity, state.to_json()),
            )
        elif sealed.action in PREFERENCE_ACTIONS:
            prefs = fold_preferences(_prefs(conn, tenant, callee or 0), sealed)
            conn.execute("DELETE FROM subscriber_prefs WHERE tenant = ? AND callee = ?", (tenant, callee))
            items = [("record", prefs.record_id)]
            if prefs.declined:
                items.append(("declined", ",".join(sorted(prefs.declined))))
            items += [(f"b:{entity}", prefs.record_id) for entity in sorted(prefs.blocks)]
            conn.executemany(
                "INSERT INTO subscriber_prefs (tenant, callee, item, value) VALUES (?, ?, ?, ?)",
                [(tenant, callee, item, value) for item, value in items],
            )
            if is_upload(sealed):
                conn.execute("INSERT INTO registry_outbox (tenant, event) VALUES (?, ?)", (tenant, sealed.to_json()))
        _set_meta(conn, f"head:{tenant}", ChainPoint(sealed.seq, sealed.hash, now).encode())
        return sealed

    async def purge(self, tenant: str, before: datetime, *, by: str) -> LedgerEvent:
        check_purge(self.config, before, self._clock())
        return await self._run(self._purge, tenant, before, by)

    def _purge(self, tenant: str, before: datetime, by: str) -> LedgerEvent:
        with write_transaction(self._c()) as conn:
            mark = iso(before) or ""
            rows = conn.execute(
                "SELECT seq, event FROM consent_log WHERE tenant = ? AND recorded_at < ? ORDER BY seq DESC LIMIT 1",
                (tenant, mark),
            ).fetchall()
            deleted = 0
            last = ChainPoint.decode(_meta(conn, f"anchor:{tenant}"))
            if rows:
                newest = LedgerEvent.from_json(rows[0][1])
                _set_meta(conn, f"purge_before:{tenant}", mark)
                deleted = conn.execute(
                    "DELETE FROM consent_log WHERE tenant = ? AND seq <= ?", (tenant, newest.seq)
                ).rowcount
                last = ChainPoint(newest.seq, newest.hash, newest.recorded_at)
                _set_meta(conn, f"anchor:{tenant}", last.encode())
            sealed = self._append_in(conn, purge_record(tenant, before, by, deleted, last))
        return sealed

    async def ack_outbox(self, tenant: str, count: int) -> None:
        await self._run(lambda: self._c().execute(
            "DELETE FROM registry_outbox WHERE id IN (SELECT id FROM registry_outbox WHERE tenant = ? "
            "ORDER BY id LIMIT ?)", (tenant, count)))

    # -- reads --------------------------------------------------------------------------------

    async def consents(self, tenant: str, callee: int) -> dict[str, ConsentState]:
        rows = await self._run(lambda: self._c().execute(
            "SELECT entity, state FROM consent_current WHERE tenant = ? AND callee = ? ORDER BY entity",
            (tenant, callee)).fetchall())
        return {entity: ConsentState.from_json(state) for entity, state in rows}

    async def preferences(self, tenant: str, callee: int) -> Preferences:
        return await self._run(lambda: _prefs(self._c(), tenant, callee))

    async def history(self, tenant: str, callee: int | None = None) -> AsyncIterator[LedgerEvent]:
        async for raw in paged(lambda after: self._run(self._page, tenant, callee, after)):
            yield LedgerEvent.from_json(raw)

    def _page(self, tenant: str, callee: int | None, after: int) -> list[tuple[int, str]]:
        if callee is None:
            sql, args = "tenant = ? AND seq > ?", (tenant, after)
        else:
            sql, args = "tenant = ? AND callee = ? AND seq > ?", (tenant, callee, after)  # type: ignore[assignment]
        return self._c().execute(
            f"SELECT seq, event FROM consent_log WHERE {sql} ORDER BY seq LIMIT 500", args  # noqa: S608
        ).fetchall()

    async def head(self, tenant: str) -> ChainPoint:
        return ChainPoint.decode(await self._run(lambda: _meta(self._c(), f"head:{tenant}")))

    async def anchor(self, tenant: str) -> ChainPoint:
        return ChainPoint.decode(await self._run(lambda: _meta(self._c(), f"anchor:{tenant}")))

    async def outbox(self, tenant: str, limit: int = 100) -> list[LedgerEvent]:
        rows = await self._run(lambda: self._c().execute(
            "SELECT event FROM registry_outbox WHERE tenant = ? ORDER BY id LIMIT ?", (tenant, limit)).fetchall())
        return [LedgerEvent.from_json(raw) for (raw,) in rows]

    async def close(self) -> None:
        await self._worker.close()


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM consent_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO consent_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _prefs(conn: sqlite3.Connection, tenant: str, callee: int) -> Preferences:
    items = dict(conn.execute(
        "SELECT item, value FROM subscriber_prefs WHERE tenant = ? AND callee = ?", (tenant, callee)).fetchall())
    declined = items.get("declined")
    return Preferences(
        declined=frozenset(declined.split(",")) if declined else frozenset(),
        blocks=frozenset(item[2:] for item in items if item.startswith("b:")),
        record_id=items.get("record", ""),
    )
