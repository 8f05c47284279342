"""How old the national list is, known without a round trip on the call's path.

The gate asks ``ListFreshness.age()`` on every decision (a subtraction); a background task
refreshes the underlying time every ``interval`` seconds from the list's sync state
(``fresh_at``: the last time a sync confirmed the list current with its source, a delta or an
unchanged manifest included) or, for a list never synced, from the live version's ``loaded_at``.
Why not ``loaded_at`` from ``facts()``: it would change both stores' lookup, and a list kept
current by daily deltas keeps its snapshot's ``loaded_at`` for months, so it would read as stale.

The same refresh says which lists the tenants need (``required_lists``) have no live version
(``missing``: list -> the tenants needing it), for ``/healthz`` (which reads it afresh) and
``dncgate_list_missing``; until the first read every needed list counts as missing. The calls themselves do not wait for
it: ``facts()`` carries the versions of each call's lists (``list_missing``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import structlog

from dncgate.clock import Clock, utc_now
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
        interval: float = 5.0, clock: Clock = utc_now,
    ) -> None:
        self.store, self.tenants, self.list_name = store, tenants, list_name
        self.interval, self.clock = interval, clock
        self.fresh_at: datetime | None = None
        self.stale_tenants: frozenset[str] = frozenset()
        # every list's size at the last refresh: a `dncgate lists load` in another process shows up
        # here (and in dncgate_list_numbers, through on_counts) within ``interval``
        self.counts: dict[str, int] = {}
        self.on_counts: Callable[[Mapping[str, int]], None] | None = None
        self.missing: dict[str, frozenset[str]] = dict(self.required)  # until the first read
        self._read = False

    @property
    def required(self) -> dict[str, frozenset[str]]:
        """Each list a tenant needs, and the tenants needing it: read from the tenants each time
        (serve's SIGHUP reload replaces them)."""
        return required_lists(self.tenants)

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
        self._note_missing({name: needed for name, needed in self.required.items() if name not in self.counts})
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

    def _note_missing(self, missing: dict[str, frozenset[str]]) -> None:
        before = self.missing if self._read else {}
        for name in sorted(missing.keys() - before.keys()):
            log.error("list.missing", list_name=name, tenants=sorted(missing[name]),
                      effect="their marketing calls are decided list_missing (marketing_on_failure)")
        for name in sorted(before.keys() - missing.keys()):
            log.info("list.present", list_name=name, count=self.counts.get(name))
        self.missing, self._read = missing, True

    def missing_reason(self) -> str:
        """Why the gate is not ready for the tenants' calls ("": every list they need is there)."""
        if not self.missing:
            return ""
        what = "; ".join(f"{name} (needed by {', '.join(sorted(tenants))})" for name, tenants in
                         sorted(self.missing.items()))
        return f"no live version of {what}" if self._read else f"lists not read from the store yet: {what}"

    async def read_missing(self) -> str:
        """``missing_reason()`` after reading the store now (``/healthz``). Raises ``StoreError``."""
        await self.refresh()
        return self.missing_reason()

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


def required_lists(tenants: Mapping[str, TenantPolicy]) -> dict[str, frozenset[str]]:
    """Each list some tenant needs a live version of, and the tenants needing it."""
    needed: dict[str, set[str]] = {}
    for name, tenant in tenants.items():
        for list_name in tenant.required_lists:
            needed.setdefault(list_name, set()).add(name)
    return {list_name: frozenset(names) for list_name, names in sorted(needed.items())}
