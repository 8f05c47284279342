"""A reseller's side of the carrier's enforcement standings (``enforcement.feed_standings``).

After each list sync from a carrier's feed (``[sync] standings_tenant`` set), ``StandingsSync``
fetches ``standings`` beside the feed's manifest and applies it to that tenant in the store the
gate reads (``originator_standing``, the same lookup as the reseller's own cases): a suspension
refuses the originator's next marketing call, a reinstatement lifts it. Fail-safe: a feed that
answers 404 (publishes no standings, or has no tenant for this reseller), cannot be reached, or
serves a document that does not parse or is older than the one applied changes nothing; the
standings applied before stay, and the reason is logged. ``accept_older`` (``dncgate lists sync
--accept-older-standings``, the operator's choice after the carrier was restored from a backup)
applies a document older than the one applied.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from dncgate.enforcement.feed_standings import MAX_DOCUMENT_BYTES, StandingsApplied, StandingsSink, parse_standings
from dncgate.errors import CaseError
from dncgate.lists.sources import SourceError
from dncgate.store.errors import StoreError

log = structlog.get_logger("dncgate.lists.standings")
DOCUMENT = "standings"  # beside manifest.json on the carrier's feed


class Documents(Protocol):
    """Where the document comes from: the sync's ``HttpSource``."""

    name: str

    async def document(self, name: str, limit: int) -> bytes | None: ...


class StandingsSync:
    def __init__(self, source: Documents, sink: StandingsSink, tenant: str, *, accept_older: bool = False) -> None:
        self.source, self.sink, self.tenant, self.accept_older = source, sink, tenant, accept_older

    async def sync_once(self) -> StandingsApplied | None:
        """Fetch and apply the carrier's standings; None when nothing was applied (logged why)."""
        origin = f"{self.source.name.rstrip('/')}/{DOCUMENT}"
        try:
            raw = await self.source.document(DOCUMENT, MAX_DOCUMENT_BYTES)
        except SourceError as exc:
            log.warning("standings.unreachable", origin=origin, error=str(exc), action="standings kept")
            return None
        if raw is None:
            log.warning("standings.absent", origin=origin, tenant=self.tenant, action="standings kept",
                        detail="the feed publishes no standings for this reseller (HTTP 404)")
            return None
        try:
            feed = parse_standings(raw, origin)
            if self.accept_older:
                log.warning("standings.accept_older", origin=origin, tenant=self.tenant, version=feed.version)
            applied = await self.sink.apply_feed_standings(self.tenant, feed, accept_older=self.accept_older)
        except CaseError as exc:
            log.error("standings.invalid", origin=origin, error=str(exc), action="standings kept")
            return None
        except StoreError as exc:
            log.error("standings.store_failed", tenant=self.tenant, error=str(exc), action="retried at the next sync")
            return None
        if applied.refused:
            log.warning("standings.refused", origin=origin, tenant=self.tenant, detail=applied.refused)
            return None
        log.info("standings.applied", origin=origin, tenant=self.tenant, carrier_tenant=feed.tenant,
                 version=applied.version, standings=len(feed.standings), added=applied.added,
                 changed=applied.changed, removed=applied.removed, kept_local=applied.kept_local)
        return applied
