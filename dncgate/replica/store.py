"""The replica as a list store: ``facts()`` from the process's copy when that is safe, else the round trip.

Built by ``dncgate.app.open_app`` around the configured store when ``[replica] enabled``. For a
number with no consent or preference record (outside the follower's index), of a configured tenant:

- the replica answered the store's changes at most ``max_lag_ms`` ago: decided from the replica, no
  round trip (the same ``Facts`` the store would give: tests/replica/test_replica_store.py);
- else the round trip, with a deadline of its own shorter than the gate's;
- the round trip failed and the replica's last complete read is at most ``replica_max_age_s`` old:
  decided from the replica ("fail static"), logged (``replica.static_decision``) and counted;
- else the store's error: the gate fails closed as without a replica.

A number with records always takes the round trip (its records are read fresh); so does an unknown
tenant. Every other method is the store's own.

Nothing acknowledged is decided stale: a writer of consent state or standing waits ``max_lag_ms``
after its write before it acknowledges (``dncgate.replica.settle``), and a replica that read the
changes longer ago than that takes the round trip. So a call checked after the acknowledgement
either reads a replica whose last read was sent after the write, or reads the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

import structlog

from dncgate.audit_record import AuditRecord
from dncgate.enforcement.model import standing_of
from dncgate.errors import CaseError
from dncgate.model import Facts, ListHit, Restriction
from dncgate.replica.follow import ListImage, RedisFollower
from dncgate.settings import ReplicaSettings
from dncgate.store.errors import StoreCorrupt, StoreError, StoreUnavailable
from dncgate.store.protocol import NATIONAL, ListStats, ListStore, LoadResult, Progress, list_key, prefixes_of

log = structlog.get_logger("dncgate.replica")


class ReplicaStore:
    """``ListStore``: ``facts()`` from the follower's copy when safe (module doc); the rest is ``inner``'s."""

    def __init__(self, inner: ListStore, follower: RedisFollower, settings: ReplicaSettings, *,
                 round_trip_deadline: float) -> None:
        self.inner = inner
        self.follower = follower
        self.settings = settings
        self.round_trip_deadline = round_trip_deadline
        self.answered = {"replica": 0, "round_trip": 0, "static": 0}

    def replica_age(self) -> float | None:
        return self.follower.age()

    @property
    def changes_applied(self) -> int:
        return self.follower.changes_applied

    def local_facts(self, tenant: str, number: int, originators: Sequence[str] = ()) -> Facts | None:
        """The store's ``Facts`` for a number without records, from the copy; None when it has records
        (or the tenant is not followed). Raises ``StoreCorrupt`` for standing that makes no sense."""
        state = self.follower.tenants.get(tenant)
        lists = self.follower.lists
        own = lists.get(list_key(tenant)) if state is not None else None
        if state is None or own is None or number in state.stateful:
            return None
        national = lists[NATIONAL]
        suspended: bool = False  # a tenant without enforcement cases has no standing at all
        restriction: Restriction | None = None
        if state.standing:
            keys = tuple(originators[:4])
            try:
                suspended, restriction = standing_of(keys, {key: state.standing.get(key) for key in keys})
            except CaseError as exc:
                raise StoreCorrupt(str(exc)) from exc
        return Facts(
            national=ListHit(NATIONAL, national.version) if national.version and national.has(number) else None,
            tenant_list=ListHit(own.name, own.version) if own.version and own.has(number) else None,
            prefix_rule=_longest_rule(national, own, number),
            national_version=national.version,
            tenant_version=own.version,
            originator_suspended=suspended, originator_restriction=restriction,
        )

    def answer_now(self, tenant: str, number: int, originators: Sequence[str] = ()) -> Facts | None:
        """What ``facts()`` answers when it answers from the replica (counted so), without awaiting
        anything; None when ``facts()`` would take the round trip. The gate asks this first: a call
        the replica decides needs no deadline and no coroutine. Raises ``StoreCorrupt`` like ``facts()``."""
        local = self.local_facts(tenant, number, originators)
        if local is None:
            return None
        age = self.follower.age()
        if age is None or age > self.settings.max_lag:
            return None
        self.answered["replica"] += 1
        return local

    async def facts(self, tenant: str, number: int, *, entity: str = "", originators: Sequence[str] = ()) -> Facts:
        local = self.local_facts(tenant, number, originators)
        age = self.follower.age()
        if local is not None and age is not None and age <= self.settings.max_lag:
            self.answered["replica"] += 1
            return local
        try:
            async with asyncio.timeout(self.round_trip_deadline):
                facts = await self.inner.facts(tenant, number, entity=entity, originators=originators)
        except (StoreError, TimeoutError) as exc:
            error = str(exc) or f"no answer within {self.round_trip_deadline * 1000:.0f} ms"
            if local is not None and age is not None and age <= self.settings.max_age_s:
                self.answered["static"] += 1
                log.warning("replica.static_decision", tenant=tenant, replica_age_s=round(age, 3), error=error)
                return local
            if isinstance(exc, StoreError):
                raise
            raise StoreUnavailable(f"store facts: {error}") from exc
        self.answered["round_trip"] += 1
        return facts

    async def replace_list(self, list_name: str, numbers: Iterable[int], *, progress: Progress | None = None
                           ) -> LoadResult:
        return await self.inner.replace_list(list_name, numbers, progress=progress)

    async def add_numbers(self, list_name: str, numbers: Sequence[int]) -> int:
        return await self.inner.add_numbers(list_name, numbers)

    async def remove_numbers(self, list_name: str, numbers: Sequence[int]) -> int:
        return await self.inner.remove_numbers(list_name, numbers)

    async def set_prefix_rule(self, list_name: str, prefix: str, *, present: bool = True) -> None:
        await self.inner.set_prefix_rule(list_name, prefix, present=present)

    async def stats(self) -> list[ListStats]:
        return await self.inner.stats()

    async def sync_state(self, list_name: str) -> dict[str, str]:
        return await self.inner.sync_state(list_name)

    async def set_sync_state(self, list_name: str, state: Mapping[str, str]) -> None:
        await self.inner.set_sync_state(list_name, state)

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        await self.inner.append_audit(records)

    async def audit_tail(self, limit: int) -> list[AuditRecord]:
        return await self.inner.audit_tail(limit)

    def audit_export(self) -> AsyncIterator[AuditRecord]:
        return self.inner.audit_export()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        """Stops the follower; ``inner`` is closed by whoever opened it."""
        await self.follower.close()


def _longest_rule(national: ListImage, own: ListImage, number: int) -> ListHit | None:
    """The longest matching prefix rule; on equal length the tenant's wins (as the stores do)."""
    if not national.rules and not own.rules:
        return None
    for prefix in prefixes_of(number):
        for image in (own, national):
            if prefix in image.rules:
                return ListHit(image.name, image.version, prefix=prefix)
    return None
