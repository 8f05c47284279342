"""Writers that acknowledge only once every gate's replica has read the write, or knows it may not have.

A gate decides from its replica only while the replica's last complete read of the store's changes
was sent at most ``max_lag_ms`` ago (``dncgate.replica.store``). A write that returns ``max_lag_ms``
after it was committed is therefore seen by every call checked after its acknowledgement: by the
replica's read (sent after the commit) or by the round trip. Opened whenever ``[replica] enabled``:
``open_app`` wraps the consent ledger (the API, the IVR, ``dncgate consent``), serve the case store
(suspensions and restrictions, which the replica reads as the originators' standing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

from dncgate.consent.ledger import ChainPoint, Ledger
from dncgate.consent.model import ConsentState, LedgerEvent, Preferences
from dncgate.early_warning.alerts import OriginatorKey
from dncgate.enforcement.complaints import Complaint
from dncgate.enforcement.feed_standings import FeedStandings
from dncgate.enforcement.model import Case, CaseState, Transition
from dncgate.enforcement.protocol import CaseStore
from dncgate.settings import ReplicaSettings


class SettlingLedger:
    """A ledger whose appends return ``settle`` seconds after the write: by then every gate's replica has
    read it, or is older than ``max_lag_ms`` and takes the round trip (module doc)."""

    def __init__(self, inner: Ledger, settle: float) -> None:
        self.inner = inner
        self.settle = settle
        self.config = inner.config

    async def append(self, event: LedgerEvent) -> LedgerEvent:
        sealed = await self.inner.append(event)
        await asyncio.sleep(self.settle)
        return sealed

    async def consents(self, tenant: str, callee: int) -> dict[str, ConsentState]:
        return await self.inner.consents(tenant, callee)

    async def preferences(self, tenant: str, callee: int) -> Preferences:
        return await self.inner.preferences(tenant, callee)

    def history(self, tenant: str, callee: int | None = None) -> AsyncIterator[LedgerEvent]:
        return self.inner.history(tenant, callee)

    async def head(self, tenant: str) -> ChainPoint:
        return await self.inner.head(tenant)

    async def anchor(self, tenant: str) -> ChainPoint:
        return await self.inner.anchor(tenant)

    async def purge(self, tenant: str, before: datetime, *, by: str) -> LedgerEvent:
        sealed = await self.inner.purge(tenant, before, by=by)
        await asyncio.sleep(self.settle)
        return sealed

    async def outbox(self, tenant: str, limit: int = 100) -> list[LedgerEvent]:
        return await self.inner.outbox(tenant, limit)

    async def ack_outbox(self, tenant: str, count: int) -> None:
        await self.inner.ack_outbox(tenant, count)

    async def close(self) -> None:
        await self.inner.close()


class SettlingCaseStore:
    """A case store whose transitions return ``settle`` seconds after the write (a suspension, a
    restriction, a reinstatement change the originator's standing the replica reads)."""

    def __init__(self, inner: CaseStore, settle: float) -> None:
        self.inner = inner
        self.settle = settle

    async def append(self, step: Transition, case: Case) -> tuple[Transition, bool]:
        stored = await self.inner.append(step, case)
        if not stored[1]:  # a replayed transition was settled when it was first written
            await asyncio.sleep(self.settle)
        return stored

    async def transition_by_key(self, tenant: str, idempotency_key: str) -> Transition | None:
        return await self.inner.transition_by_key(tenant, idempotency_key)

    async def case(self, tenant: str, case_id: str) -> Case | None:
        return await self.inner.case(tenant, case_id)

    async def open_case(self, originator: OriginatorKey) -> Case | None:
        return await self.inner.open_case(originator)

    async def cases(self, tenant: str, *, state: CaseState | None = None, limit: int = 100) -> list[Case]:
        return await self.inner.cases(tenant, state=state, limit=limit)

    def transitions(self, tenant: str, case_id: str) -> AsyncIterator[Transition]:
        return self.inner.transitions(tenant, case_id)

    async def standings(self, tenant: str) -> FeedStandings:
        return await self.inner.standings(tenant)

    async def put_complaint(self, complaint: Complaint) -> tuple[Complaint, bool]:
        return await self.inner.put_complaint(complaint)

    async def update_complaint(self, complaint: Complaint) -> None:
        await self.inner.update_complaint(complaint)

    async def complaint(self, tenant: str, complaint_id: str) -> Complaint | None:
        return await self.inner.complaint(tenant, complaint_id)

    async def complaints(self, tenant: str, *, limit: int = 100) -> list[Complaint]:
        return await self.inner.complaints(tenant, limit=limit)

    async def close(self) -> None:
        await self.inner.close()


def settled_cases(store: CaseStore, settings: ReplicaSettings) -> CaseStore:
    """``store``, settling each transition when ``[replica] enabled``."""
    return SettlingCaseStore(store, settings.max_lag) if settings.enabled else store
