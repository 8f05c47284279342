"""What an enforcement-case store offers. Backends: ``store.sqlite.cases`` and ``store.redis.cases``.

Every method may raise ``StoreUnavailable``/``StoreCorrupt`` (``StoreError``). ``append`` writes a
sealed transition, the case it leaves and the originator's standing (what ``facts()`` reads) in
one atomic write, and is idempotent: a transition whose idempotency key the tenant already has is
not written again; the stored one is returned with ``replayed=True``. Nothing is ever deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from dncgate.early_warning.alerts import OriginatorKey
from dncgate.enforcement.complaints import Complaint
from dncgate.enforcement.feed_standings import FeedStandings
from dncgate.enforcement.model import Case, CaseState, Transition
from dncgate.errors import EnforcementError


class CaseConflict(EnforcementError):
    """The case moved under the writer (another transition took its ``seq``), or a second case
    would open for an originator that has one open. The caller reloads and decides again."""


class CaseStore(Protocol):
    async def append(self, step: Transition, case: Case) -> tuple[Transition, bool]:
        """Write ``step`` (sealed; ``seq`` = the stored head's + 1, ``prev_hash`` its hash) and
        ``case`` (the fold). Returns (the stored transition, whether it was already there).
        Raises ``CaseConflict`` when the head moved or the originator already has an open case."""
        ...

    async def transition_by_key(self, tenant: str, idempotency_key: str) -> Transition | None:
        """The transition the tenant recorded under this idempotency key, if any."""
        ...

    async def case(self, tenant: str, case_id: str) -> Case | None: ...

    async def open_case(self, originator: OriginatorKey) -> Case | None:
        """The originator's case that is not closed, if any (at most one)."""
        ...

    async def cases(self, tenant: str, *, state: CaseState | None = None, limit: int = 100) -> list[Case]:
        """Newest first."""
        ...

    def transitions(self, tenant: str, case_id: str) -> AsyncIterator[Transition]:
        """Every transition of the case, oldest first."""
        ...

    async def standings(self, tenant: str) -> FeedStandings:
        """The standing every originator of the tenant has now (what ``facts()`` reads), and the time
        of the tenant's last case change as its version: what a carrier's feed serves its reseller."""
        ...

    async def put_complaint(self, complaint: Complaint) -> tuple[Complaint, bool]:
        """Insert unless the tenant has a complaint with this id; returns (stored, already there)."""
        ...

    async def update_complaint(self, complaint: Complaint) -> None:
        """Record a complaint's SLA steps (forwarded, answered, informed); never removes one."""
        ...

    async def complaint(self, tenant: str, complaint_id: str) -> Complaint | None: ...

    async def complaints(self, tenant: str, *, limit: int = 100) -> list[Complaint]:
        """Newest first."""
        ...

    async def close(self) -> None: ...
