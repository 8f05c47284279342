"""The composition root: the one place that opens the store, the consent ledger, the audit sink, the
national list's freshness and the metrics, and builds the one ``Gate``.

``dncgate serve``, ``dncgate check``, the lists, audit and consent commands, classic AGI's
in-process decision and the benches all go through ``open_app``, so the same call gets the same
decision from each: the same tenants, the same store deadline, and the list's age always known
(``stale_action = "reject"`` needs it). What differs per program is a parameter here, not wiring
of its own: whether it needs the ledger or metrics, and how its audit sink queues and lingers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from dncgate.audit import LINGER, AuditSink
from dncgate.audit_spool import AuditSpool, open_spool
from dncgate.gate import Gate
from dncgate.lists.freshness import ListFreshness
from dncgate.reload import LiveTenants
from dncgate.settings import Settings
from dncgate.store.errors import StoreError
from dncgate.store.factory import open_store, require_store
from dncgate.store.protocol import ListStore

if TYPE_CHECKING:  # imported when asked for: classic AGI needs neither (consent.model, prometheus_client)
    from dncgate.consent.ledger import Ledger
    from dncgate.metrics import GateMetrics

log = structlog.get_logger("dncgate.app")
AUDIT_GRACE = 2.0  # what is queued for the audit gets this long to be written on the way out
FIRST_READ_DEADLINE = 2.0  # the list's freshness, read once at start (serve then keeps it current)


@dataclass
class App:
    settings: Settings
    store: ListStore
    audit: AuditSink
    freshness: ListFreshness
    gate: Gate
    tenants: LiveTenants  # what the gate and the freshness read; serve replaces it on SIGHUP
    ledger: Ledger | None = None  # when asked for (``open_app(ledger=True)``)
    metrics: GateMetrics | None = None  # when asked for (``open_app(metrics=True)``)

    def consent_ledger(self) -> Ledger:
        """The ledger; only for a program that opened it."""
        if self.ledger is None:
            raise RuntimeError("open_app(ledger=True) opens the consent ledger")
        return self.ledger


@asynccontextmanager
async def open_app(
    settings: Settings, *, create_store: bool = False, ledger: bool = False, metrics: bool = False,
    spool: bool = False, replica: bool = False,
    audit_queue_size: int | None = None, audit_linger: float = LINGER, audit_grace: float = AUDIT_GRACE,
) -> AsyncIterator[App]:
    """Everything a program needs to decide calls, opened from ``settings``; closed in reverse on exit.

    ``create_store``: only for a program that writes lists (or ``dncgate init``): a SQLite store
    that does not exist is created. Otherwise it raises ``StoreMissing`` naming the path, before
    anything (the audit spool beside the file included) is created.

    ``spool``: the audit's write-ahead spool (``[audit] spool_dir``), for the long-running gate
    (``serve``): it holds the spool's lock, replays what a killed gate left and spools before each
    verdict. A short-lived program (``check``, classic AGI) writes its few records directly.

    ``replica``: when ``[replica] enabled`` too, ``facts()`` goes through the in-process replica
    (``dncgate.replica``), loaded in the background, and the ledger's appends settle ``max_lag_ms``
    before they return. For the long-running gate (``serve``): a one-call program would load the
    lists for nothing. Every writer of consent state settles whenever ``[replica] enabled``.

    ``audit_queue_size`` defaults to ``[audit] queue_size``; ``audit_linger`` to the sink's (a process
    that decides one call and exits passes 0). Raises ``StoreError`` if the store cannot be
    opened."""
    async with AsyncExitStack() as stack:
        if not create_store:
            require_store(settings.store)
        audit_spool = open_spool(settings.audit_spool) if spool else None  # a second gate on it stops here
        store = await _open_store(settings, audit_spool, create_store)
        stack.push_async_callback(store.close)
        tenants = LiveTenants(settings.tenants)  # replaced whole by a reload; the replica follows it
        if replica and settings.replica.enabled:  # [replica] needs a Redis store (settings refuse it otherwise)
            store = _replica_of(settings, store, tenants)
            stack.push_async_callback(store.close)  # the follower, before the store it reads
        consent = _open_ledger(settings) if ledger else None
        if consent is not None:
            stack.push_async_callback(consent.close)
        audit = AuditSink(store, queue_size=audit_queue_size or settings.audit.queue_size, linger=audit_linger,
                          spool=audit_spool)
        audit.start()  # replays what a killed gate left in the spool, then writes the new records
        stack.push_async_callback(audit.close, timeout=audit_grace)
        freshness = ListFreshness(store, tenants, list_name=settings.sync.list_name)
        if not create_store:  # a program that decides calls; a list writer (or init) decides none
            await _first_read(freshness)
        gate_metrics = _metrics() if metrics else None
        if gate_metrics is not None and replica and settings.replica.enabled:
            from dncgate.replica.store import ReplicaStore

            if isinstance(store, ReplicaStore):
                gate_metrics.watch_replica(store)
        gate = Gate(tenants, store, audit, store_deadline=settings.store.timeout, metrics=gate_metrics,
                    list_age=freshness.age)
        yield App(settings, store, audit, freshness, gate, tenants, consent, gate_metrics)


async def _open_store(settings: Settings, audit_spool: AuditSpool | None, create: bool) -> ListStore:
    try:
        return await open_store(settings.store, create=create)
    except BaseException:
        if audit_spool is not None:  # the audit sink owns it from here on; not yet
            await audit_spool.close()
        raise


async def _first_read(freshness: ListFreshness) -> None:
    """The list's age before the first call; if the store cannot say, the age stays unknown (logged)."""
    try:
        async with asyncio.timeout(FIRST_READ_DEADLINE):
            await freshness.refresh()
    except (StoreError, TimeoutError) as exc:
        log.warning("list.freshness_unavailable", list_name=freshness.list_name, error=str(exc) or "timeout")


def _open_ledger(settings: Settings) -> Ledger:
    from dncgate.store.factory import open_ledger

    opened = open_ledger(settings.store, settings.consent)
    if not settings.replica.enabled:
        return opened
    from dncgate.replica.settle import SettlingLedger

    return SettlingLedger(opened, settings.replica.max_lag)


def _replica_of(settings: Settings, store: ListStore, tenants: LiveTenants) -> ListStore:
    from dncgate.replica.follow import RedisFollower
    from dncgate.replica.store import ReplicaStore

    follower = RedisFollower(settings.store.url, settings.replica, tenants)
    follower.start()
    # The round trip's own deadline, inside the gate's: a failed one still leaves time to decide from the replica.
    return ReplicaStore(store, follower, settings.replica, round_trip_deadline=settings.store.timeout * 0.8)


def _metrics() -> GateMetrics:
    from dncgate.metrics import GateMetrics

    return GateMetrics()
