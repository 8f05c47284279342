"""The carrier's enforcement standings as its reseller feed publishes them (issue 12 item 5).

A carrier's feed serves each reseller the standing its gate gives the originators of the carrier's
tenant named like the reseller's feed token: one JSON document, the whole set (restricted with its
caps, or suspended; an originator not in it is clear), with a ``version`` that grows with every
change of that tenant's standings and never goes backwards: the carrier's case store bumps it, in
the transaction of the change, to ``max(previous + 1, the change's time in ms)`` (0: no change yet),
so a clock stepped back at the carrier does not make its later changes look older. The reseller
keeps it whole as the feed's standings of one of its own tenants (``[sync] standings_tenant``), and
the standing its gate reads for an originator is the ``strictest`` of the feed's and its own open
case's (case id ``FEED_CASE_ID`` when it is the feed's): a reinstatement (an originator no longer in
the set) lifts what the feed set and gives the reseller's own case its standing back. Applying the
same document again changes nothing; a document older than the one applied is refused (a replay, a
carrier restored from a backup: its next change serves a later version again), unless applied with
``accept_older``. A feed without the document (HTTP 404) says nothing: what was applied stays.

Values are the stores' standing encoding (``s``, ``r:<per minute>:<concurrent>``,
``model.encode_standing``); the document spells them out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dncgate.early_warning.alerts import OriginatorKind
from dncgate.enforcement.model import Standing, decode_standing
from dncgate.errors import CaseError

FORMAT = "dncgate-standings/1"
FEED_CASE_ID = "~feed"  # the case id of a standing row the feed wrote (a case's id never starts with ~)
MAX_STANDINGS = 100_000  # a document with more is refused, not cut
MAX_DOCUMENT_BYTES = 16 << 20
_MAX_VALUE = 256
_KINDS = {kind.value for kind in OriginatorKind}


@dataclass(frozen=True, slots=True)
class FeedStandings:
    """One tenant's standings: originator key (``account:X``) -> the stores' standing value."""

    tenant: str
    version: int
    standings: Mapping[str, str] = field(default_factory=dict)

    def to_json(self, generated_at: str) -> bytes:
        entries = [_entry(key, value) for key, value in sorted(self.standings.items())]
        return json.dumps({"format": FORMAT, "tenant": self.tenant, "version": self.version,
                           "generated_at": generated_at, "standings": entries}, sort_keys=True).encode()


class StandingsReader(Protocol):
    """What a carrier's feed reads the standings from (``CaseStore.standings``)."""

    async def standings(self, tenant: str) -> FeedStandings: ...


class StandingsSink(Protocol):
    """Where a reseller applies them: its case store (``SqliteCaseStore``, ``RedisCaseStore``).
    ``accept_older``: apply a document older than the one applied (the operator's choice, after a
    carrier was restored from a backup)."""

    async def apply_feed_standings(self, tenant: str, feed: FeedStandings, *,
                                   accept_older: bool = False) -> StandingsApplied: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StandingsApplied:
    """What applying a document changed in the reseller's store."""

    tenant: str  # the reseller's tenant they were applied to
    version: int  # the document's
    added: int = 0  # originators the feed lists and did not before
    changed: int = 0  # originators the feed lists with another standing than before
    removed: int = 0  # originators the feed no longer lists (reinstated by the carrier)
    kept_local: int = 0  # of those, the ones whose enforced standing stays their own case's (``strictest``)
    refused: str = ""  # why nothing was applied (an older version), "" when it was


def strictest(own: str | None, feed: str | None) -> str | None:
    """The standing the gate enforces on an originator the reseller's own case gives ``own`` and
    the carrier's feed ``feed`` (stored values; None: clear): a suspension from either, else one
    restriction with the tighter of the two caps on each count (0 is no cap), else clear. Raises
    ``CaseError`` for a value that is no standing."""
    if "s" in (own, feed):
        return "s"
    if own is None or feed is None:
        return own or feed
    _, mine = decode_standing(own, "")
    _, theirs = decode_standing(feed, "")
    assert mine is not None  # neither is "s" nor None here
    assert theirs is not None
    return f"r:{_tighter(mine.per_minute, theirs.per_minute)}:{_tighter(mine.concurrent, theirs.concurrent)}"


def _tighter(a: int, b: int) -> int:
    """The tighter of two caps, where 0 means no cap."""
    return min(a, b) if a and b else a or b


def _entry(key: str, value: str) -> dict[str, Any]:
    suspended, restriction = decode_standing(value, key)
    if suspended:
        return {"originator": key, "standing": Standing.SUSPENDED.value}
    caps = restriction
    assert caps is not None  # decode_standing gives one or the other for a stored value
    return {"originator": key, "standing": Standing.RESTRICTED.value, "per_minute": caps.per_minute,
            "concurrent": caps.concurrent}


def parse_standings(raw: bytes, origin: str) -> FeedStandings:
    """The document a carrier's feed served. Raises ``CaseError`` (naming ``origin``) on anything else."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CaseError(f"{origin}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CaseError(f"{origin}: not a {FORMAT} document")
    tenant, version, entries = data.get("tenant"), data.get("version"), data.get("standings")
    if not isinstance(tenant, str) or not tenant:
        raise CaseError(f"{origin}: 'tenant' must be a non-empty string")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CaseError(f"{origin}: 'version' must be a whole number >= 0")
    if not isinstance(entries, list):
        raise CaseError(f"{origin}: 'standings' must be a list (an empty one: every originator is clear)")
    if len(entries) > MAX_STANDINGS:
        raise CaseError(f"{origin}: {len(entries)} standings, more than {MAX_STANDINGS}")
    standings: dict[str, str] = {}
    for number, entry in enumerate(entries, 1):
        key, value = _parse_entry(entry, f"{origin}: standing {number}")
        if key in standings:
            raise CaseError(f"{origin}: standing {number}: {key} is listed twice")
        standings[key] = value
    return FeedStandings(tenant, version, standings)


def _parse_entry(entry: object, where: str) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise CaseError(f"{where}: expected an object")
    key = entry.get("originator")
    kind, _, value = key.partition(":") if isinstance(key, str) else ("", "", "")
    if kind not in _KINDS or not value or len(value) > _MAX_VALUE:
        raise CaseError(f"{where}: 'originator' must be KIND:VALUE, KIND one of {', '.join(sorted(_KINDS))}")
    standing = entry.get("standing")
    if standing == Standing.SUSPENDED.value:
        return f"{kind}:{value}", "s"
    if standing != Standing.RESTRICTED.value:
        raise CaseError(f"{where}: 'standing' must be suspended or restricted, not {standing!r}")
    caps = [entry.get("per_minute", 0), entry.get("concurrent", 0)]
    if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 1_000_000 for c in caps):
        raise CaseError(f"{where}: 'per_minute' and 'concurrent' must be whole numbers 0..1000000 (0: no cap)")
    return f"{kind}:{value}", f"r:{caps[0]}:{caps[1]}"
