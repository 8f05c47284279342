"""Subscriber registrations recorded in the consent ledger, forwarded to the national platform.

The ledger (API and IVR) queues every preference change in its registry outbox; this moves
them into the upstream ``Outbox`` that the pusher uploads with retries and idempotency keys.
The ledger record's id is the idempotency key, so a crash between the two steps re-queues
a duplicate the outbox recognises, never a lost or a doubled registration.

What the national platform receives: ``decline`` -> a registration (``add``; the declined
categories, or none for "all marketing"), ``withdraw`` -> ``remove``. Blocks against one
business are a matter between the subscriber and that business, not the national list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from dncgate.backoff import Backoff, BackoffPolicy
from dncgate.consent.ledger import Ledger
from dncgate.consent.model import Action, LedgerEvent
from dncgate.lists.upstream import Outbox, RegistrationError
from dncgate.store.errors import StoreError

log = structlog.get_logger("dncgate.lists.registrations")
BATCH = 100


async def forward_once(ledger: Ledger, outbox: Outbox, tenants: Iterable[str]) -> int:
    """Move every queued ledger registration of ``tenants`` into ``outbox``; returns how many were queued."""
    queued = 0
    for tenant in tenants:
        while events := await ledger.outbox(tenant, BATCH):
            for event in events:
                queued += await _forward(outbox, event)
            await ledger.ack_outbox(tenant, len(events))
            if len(events) < BATCH:
                break
    return queued


async def _forward(outbox: Outbox, event: LedgerEvent) -> int:
    if event.action not in (Action.DECLINE, Action.WITHDRAW):
        return 0
    declined = [c for c in event.categories if c != "*"]
    channel = event.evidence.channel.value if event.evidence is not None else "unknown"
    try:
        await outbox.enqueue_registration(
            event.callee,
            action="add" if event.action is Action.DECLINE else "remove",
            channel=channel,
            category=",".join(declined) or None,
            key=event.id,
            at=event.recorded_at.isoformat() if event.recorded_at else None,
        )
    except RegistrationError as exc:
        # The ledger accepted it, so this is a bug or a number the platform cannot take: say so, keep going.
        log.error("registrations.not_forwarded", record=event.id, error=str(exc))
        return 0
    return 1


async def run_forwarder(ledger: Ledger, outbox: Outbox, tenants: Iterable[str], stop: asyncio.Event,
                        interval: float = 5.0, backoff: BackoffPolicy | None = None) -> None:
    """Forward every ``interval`` seconds until ``stop``. An error never ends the loop (it would stop
    every registration reaching the platform until a restart): it is logged and retried, waiting
    longer after each consecutive failure (``backoff``; from ``interval`` up to 5 minutes)."""
    names = list(tenants)
    backoff = backoff or Backoff(initial=interval, maximum=max(interval, 300.0))
    failures = 0
    while not stop.is_set():
        try:
            count = await forward_once(ledger, outbox, names)
            if count:
                log.info("registrations.forwarded", count=count)
            failures = 0
        except StoreError as exc:
            failures += 1
            log.warning("registrations.ledger_unavailable", error=str(exc), failures=failures)
        except Exception as exc:  # noqa: BLE001 -- the forwarder must outlive any one bad batch; retried
            failures += 1
            log.error("registrations.forwarder_error", error=f"{type(exc).__name__}: {exc}", failures=failures)
        wait = interval if failures == 0 else max(interval, backoff.delay(failures - 1))
        try:
            async with asyncio.timeout(wait):
                await stop.wait()
        except TimeoutError:
            pass
