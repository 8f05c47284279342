"""The carrier's standings applied to a reseller's store (``store.sqlite.feed_standings``,
``store.redis.feed_standings``; both backends): what the gate's lookup sees, the reseller's own
case kept and given back, versions (a carrier's never go backwards, whatever its clock does), and
the document's form (``enforcement.feed_standings``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis

from dncgate.enforcement.feed_standings import FeedStandings, parse_standings, strictest
from dncgate.enforcement.model import CaseAction
from dncgate.enforcement.service import Enforcement, Policy
from dncgate.errors import CaseError
from dncgate.model import Restriction
from dncgate.store.protocol import ListStore
from dncgate.store.redis import case_keys
from tests.conftest import RedisServer, open_test_store
from tests.enforcement.conftest import Clock, Stores, alert, open_case_store, own_restriction

NUMBER = 8613800138000
OWN = "account:acme-out"  # the reseller's own case (tests.enforcement.conftest.ACME_OUT)


async def _standing(store: ListStore, key: str, tenant: str = "acme") -> tuple[bool, Restriction | None]:
    facts = await store.facts(tenant, NUMBER, originators=(key,))
    return facts.originator_suspended, facts.originator_restriction


async def test_the_feed_never_takes_the_resellers_own_standing_and_gives_it_back(stores: Stores) -> None:
    lists, cases = stores.lists, stores.cases
    service, case_id, own = await own_restriction(cases, OWN)
    assert await _standing(lists, OWN) == (False, own)

    first = await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 10, {
        OWN: "r:1:1", "account:x": "s", "trunk:t": "r:2:0"}))
    assert (first.added, first.changed, first.removed, first.kept_local) == (3, 0, 0, 0)
    # both restrict it: each count takes the tighter cap (own 5/min uncapped concurrency, carrier 1/1)
    assert await _standing(lists, OWN) == (False, Restriction(1, 1, OWN))
    assert await _standing(lists, "account:x") == (True, None)
    assert await _standing(lists, "trunk:t") == (False, Restriction(2, 0, "trunk:t"))

    second = await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 11, {OWN: "s", "trunk:t": "s"}))
    assert (second.added, second.changed, second.removed, second.kept_local) == (0, 2, 1, 0)
    assert await _standing(lists, OWN) == (True, None)  # the carrier's suspension is stricter: it wins
    assert await _standing(lists, "account:x") == (False, None)  # reinstated by the carrier

    older = await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 10, {}))
    assert older.refused == "version 10 is older than the applied 11"
    assert await _standing(lists, "trunk:t") == (True, None)  # nothing of it applied

    cleared = await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 12, {}))
    assert (cleared.removed, cleared.kept_local, cleared.refused) == (2, 1, "")
    assert await _standing(lists, OWN) == (False, own)  # the reseller's own restriction is back
    assert await _standing(lists, "trunk:t") == (False, None)
    assert (await cases.standings("acme")).standings == {OWN: "r:5:0"}
    same = await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 12, {}))
    assert (same.added, same.changed, same.removed, same.refused) == (0, 0, 0, "")

    await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 13, {OWN: "s"}))
    await service.act("acme", case_id, CaseAction.LIFT, actor="cli:ops", reason="own case lifted")
    assert await _standing(lists, OWN) == (True, None)  # the case's step does not lift the carrier's
    await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 14, {}))
    assert await _standing(lists, OWN) == (False, None)
    await service.drain()


async def test_a_carrier_serves_what_its_gate_enforces_with_its_last_case_change_as_version(stores: Stores) -> None:
    cases, clock = stores.cases, Clock()
    assert await cases.standings("acme") == FeedStandings("acme", 0, {})
    service = Enforcement(cases, Policy(notice_period=timedelta(0)), tenants=["acme"], clock=clock)
    step = await service.on_alert(alert())
    assert step is not None
    clock.advance(minutes=5)
    await service.act("acme", step.case.case_id, CaseAction.SUSPEND, actor="cli:ops", reason="s", urgent=True)
    assert (await stores.lists.facts("acme", NUMBER, originators=(OWN,))).originator_suspended
    served = await cases.standings("acme")
    assert served == FeedStandings("acme", int(clock.at.timestamp() * 1000), {OWN: "s"})
    assert await cases.standings("other") == FeedStandings("other", 0, {})
    await service.drain()


def test_the_document_round_trips_and_anything_else_is_refused_with_its_reason() -> None:
    feed = FeedStandings("reseller-a", 7, {"account:a": "s", "caller_id:+8613800138000": "r:3:1"})
    raw = feed.to_json("2026-12-03T10:00:00+00:00")
    assert parse_standings(raw, "feed") == feed
    refused = {
        b"{": "not JSON",
        b'{"format": "other"}': "not a dncgate-standings/1 document",
        b'{"format": "dncgate-standings/1", "tenant": "t", "version": 1}': "'standings' must be a list",
        b'{"format": "dncgate-standings/1", "tenant": "t", "version": -1, "standings": []}': "'version'",
        b'{"format": "dncgate-standings/1", "tenant": "t", "version": 1, "standings": [{"originator": "acct:a",'
        b' "standing": "suspended"}]}': "standing 1: 'originator' must be KIND:VALUE",
        b'{"format": "dncgate-standings/1", "tenant": "t", "version": 1, "standings": [{"originator": "account:a",'
        b' "standing": "clear"}]}': "'standing' must be suspended or restricted",
        b'{"format": "dncgate-standings/1", "tenant": "t", "version": 1, "standings": [{"originator": "account:a",'
        b' "standing": "restricted", "per_minute": -1}]}': "'per_minute' and 'concurrent'",
        b'{"format": "dncgate-standings/1", "tenant": "t", "version": 1, "standings": [{"originator": "account:a",'
        b' "standing": "suspended"}, {"originator": "account:a", "standing": "suspended"}]}': "listed twice",
    }
    for document, reason in refused.items():
        with pytest.raises(CaseError, match="^feed: .*" + reason.replace("(", r"\(").replace(".", r"\.")):
            parse_standings(document, "feed")


@pytest.mark.parametrize(("own", "feed", "enforced"), [
    ("s", "r:5:1", "s"), ("r:5:1", "s", "s"), (None, None, None), ("r:5:1", None, "r:5:1"), (None, "r:2:0", "r:2:0"),
    ("r:0:0", "r:2:1", "r:2:1"),  # the reseller's own uncapped restriction does not undo the carrier's caps
    ("r:10:1", "r:2:3", "r:2:1"),  # each count takes the tighter cap
])
def test_the_enforced_standing_is_the_stricter_on_every_count(own: str | None, feed: str | None,
                                                             enforced: str | None) -> None:
    assert strictest(own, feed) == enforced


async def test_a_redis_store_from_before_the_feed_keeps_its_own_standings_through_an_apply(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """Before ``own`` existed, a Redis store kept its cases' standings in ``standing`` alone."""
    lists = await open_test_store("redis", tmp_path, redis_server)
    cases = open_case_store("redis", tmp_path, redis_server)
    try:
        service, _, own = await own_restriction(cases, OWN)
        with Redis.from_url(redis_server.url) as client:
            client.delete(case_keys.own("acme"))
        await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 1, {OWN: "s"}))
        assert await _standing(lists, OWN) == (True, None)
        lifted = await cases.apply_feed_standings("acme", FeedStandings("reseller-a", 2, {}))
        assert (lifted.removed, lifted.kept_local) == (1, 1)
        assert await _standing(lists, OWN) == (False, own)  # its own case's, kept through the feed's
        await service.drain()
    finally:
        await cases.close()
        await lists.close()


async def test_a_redis_apply_written_in_chunks_survives_another_apply_racing_it(
        tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each script writes ``_CHUNK`` originators and checks no other apply wrote since: racing applies
    end with the newer document applied whole, whichever wrote in between."""
    from dncgate.store.redis import feed_standings

    monkeypatch.setattr(feed_standings, "_CHUNK", 2)
    lists = await open_test_store("redis", tmp_path, redis_server)
    cases = open_case_store("redis", tmp_path, redis_server)
    try:
        older = FeedStandings("reseller-a", 10, {f"account:o{i}": "s" for i in range(7)})
        newer = FeedStandings("reseller-a", 11, {f"account:n{i}": "r:1:0" for i in range(5)} | {"account:o1": "s"})
        results = await asyncio.gather(cases.apply_feed_standings("acme", older),
                                       cases.apply_feed_standings("acme", newer))
        assert results[1].refused == ""
        assert (await cases.apply_feed_standings("acme", newer)).added == 0  # the newer is what is there
        assert (await cases.apply_feed_standings("acme", older)).refused  # and the version applied
        assert (await cases.standings("acme")).standings == newer.standings  # what the gate enforces
        assert await _standing(lists, "account:o2") == (False, None)
        assert await _standing(lists, "account:n4") == (False, Restriction(1, 0, "account:n4"))
    finally:
        await cases.close()
        await lists.close()
