"""How old the national list is, known without a round trip on the call's path.

The gate asks ``ListFreshness.age()`` on every decision (a subtraction); a background task
refreshes the underlying time every ``interval`` seconds from the list's sync state
(``fresh_at``: the last time a sync confirmed the list current with its source, a delta or an
unchanged manifest included) or, for a list never synced, from the live version's ``loaded_at``.
Why not ``loaded_at`` from ``facts()``: it would change both stores' lookup, and a list kept
current by daily deltas keeps its snapshot's ``loaded_at`` for months, so it would read as stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import structlog

from dncgate.model import TenantPolicy
from dncgate.store.errors import StoreError
from dncgate.store.protocol import NATIONAL, ListStore

log = structlog.get_logger("dncgate.lists.freshness")


def parse_time(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class ListFreshness:
    def __init__(
        self, store: ListStore, tenants: Mapping[str, TenantPolicy], *, list_name: str = NATIONAL,
        interval: float = 5.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.tenants, self.list_name = store, tenants, list_name
        self.interval, self.clock = interval, clock
        self.fresh_at: datetime | None = None
        self.stale_tenants: frozenset[str] = frozenset()
        # every list's size at the last refresh: a `dncgate lists load` in another process shows up
        # here (and in dncgate_list_numbers, through on_counts) within ``interval``
        self.counts: dict[str, int] = {}
        self.on_counts: Callable[[Mapping[str, int]], None] | None = None

    def age(self) -> timedelta | None:
        """The list's age now (``None``: never loaded, or not read yet)."""
        if self.fresh_at is None:
            return None
        return max(timedelta(0), self.clock() - self.fresh_at)

    async def refresh(self) -> None:
        """Read the list's freshness from the store; log ``list.stale`` / ``list.fresh`` on changes."""
        state = await self.store.sync_state(self.list_name)
        stats = await self.store.stats()
        self.counts = {s.list_name: s.count for s in stats if s.version}
        if self.on_counts is not None:
            self.on_counts(self.counts)
        fresh_at = parse_time(state.get("fresh_at", ""))
        if fresh_at is None:
            live = next((s for s in stats if s.list_name == self.list_name), None)
            fresh_at = parse_time(live.loaded_at) if live is not None and live.version else None
        self.fresh_at = fresh_at
        age = self.age()
        stale = frozenset(name for name, t in self.tenants.items() if age is None or age > t.max_list_age)
        for name in sorted(stale - self.stale_tenants):
            t = self.tenants[name]
            log.warning("list.stale", list_name=self.list_name, tenant=name, age=str(age), max_age=str(t.max_list_age),
                        action=t.stale_action.value)
        for name in sorted(self.stale_tenants - stale):
            log.info("list.fresh", list_name=self.list_name, tenant=name, age=str(age))
        self.stale_tenants = stale

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``interval`` seconds until ``stop`` is set; store errors keep the last value."""
        while not stop.is_set():
            try:
                async with asyncio.timeout(max(self.interval, 1.0)):
                    await self.refresh()
            except (StoreError, TimeoutError) as exc:
                log.warning("list.freshness_unavailable", list_name=self.list_name, error=str(exc) or "timeout")
            try:
                async with asyncio.timeout(self.interval):
                    await stop.wait()
            except TimeoutError:
                pass
