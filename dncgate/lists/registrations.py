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
                        interval: float = 5.0) -> None:
    names = list(tenants)
    while not stop.is_set():
        try:
            count = await forward_once(ledger, outbox, names)
            if count:
                log.info("registrations.forwarded", count=count)
        except StoreError as exc:
            log.warning("registrations.ledger_unavailable", error=str(exc))
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
        except TimeoutError:
            pass
