"""The version of the standings a carrier's feed serves never goes backwards (review of issue 12):
a clock stepped back at the carrier does not pin its resellers to what they applied before. Both
backends; the carrier's tenant ``reseller-a`` and the reseller's ``acme`` share one store here
(``standings`` of one, ``apply_feed_standings`` into the other, the transport being
tests/lists/test_feed_standings)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

from redis import Redis

from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
from dncgate.enforcement.feed_standings import FeedStandings
from dncgate.enforcement.model import CaseAction
from dncgate.enforcement.service import Enforcement, Policy
from dncgate.store.redis import case_keys
from tests.conftest import RedisServer
from tests.enforcement.conftest import T0, Clock, Stores, alert

NUMBER = 8613800138000
CARRIER, RESELLER = "reseller-a", "acme"
FIRST, SECOND = (OriginatorKey(CARRIER, OriginatorKind.ACCOUNT, name) for name in ("first", "second"))


async def _suspended(stores: Stores, key: str) -> bool:
    return (await stores.lists.facts(RESELLER, NUMBER, originators=(key,))).originator_suspended


async def _suspend(service: Enforcement, originator: OriginatorKey, alert_id: str) -> str:
    step = await service.on_alert(alert(alert_id, originator=originator))
    assert step is not None
    await service.act(CARRIER, step.case.case_id, CaseAction.SUSPEND, actor="cli:ops", reason="campaign", urgent=True)
    return step.case.case_id


async def test_a_suspension_made_after_the_carriers_clock_stepped_back_reaches_the_resellers_gate(
        stores: Stores) -> None:
    clock = Clock(T0 + timedelta(hours=1))
    carrier = Enforcement(stores.cases, Policy(notice_period=timedelta(0)), tenants=[CARRIER], clock=clock)
    first = await _suspend(carrier, FIRST, "a-1")
    before = await stores.cases.standings(CARRIER)
    assert not (await stores.cases.apply_feed_standings(RESELLER, before)).refused
    assert await _suspended(stores, "account:first")

    clock.at = T0  # an NTP correction: the carrier's clock an hour back
    await carrier.act(CARRIER, first, CaseAction.NOTE, actor="cli:ops", reason="called them")  # its last change
    await _suspend(carrier, SECOND, "a-2")
    after = await stores.cases.standings(CARRIER)
    assert after.version > before.version
    applied = await stores.cases.apply_feed_standings(RESELLER, after)
    assert (applied.refused, applied.added) == ("", 1)
    assert await _suspended(stores, "account:second")  # the violator's next call is refused

    replayed = await stores.cases.apply_feed_standings(RESELLER, before)  # a truly older document still is
    assert replayed.refused == f"version {before.version} is older than the applied {after.version}"
    assert await _suspended(stores, "account:second")
    forced = await stores.cases.apply_feed_standings(RESELLER, before, accept_older=True)  # the operator's choice
    assert (forced.refused, forced.removed) == ("", 1)
    assert not await _suspended(stores, "account:second")
    await carrier.drain()


async def test_every_change_serves_a_later_version_and_an_older_store_starts_from_its_last_case_change(
        stores: Stores, tmp_path: Path, redis_server: RedisServer) -> None:
    clock = Clock()
    carrier = Enforcement(stores.cases, Policy(notice_period=timedelta(0)), tenants=[CARRIER], clock=clock)
    start = int(T0.timestamp() * 1000)
    step = await carrier.on_alert(alert("a-1", originator=FIRST))  # two steps (open, notice) in the same ms
    assert step is not None
    assert (await stores.cases.standings(CARRIER)).version == start + 1
    _forget_the_counter(stores.kind, tmp_path, redis_server)  # as a store written before it existed
    assert (await stores.cases.standings(CARRIER)).version == start  # its last case change, as served then
    versions = []
    for minutes in (-5, 0, -1):  # the clock wanders back and forth, the version only grows
        clock.at = T0 + timedelta(minutes=minutes)
        await carrier.act(CARRIER, step.case.case_id, CaseAction.NOTE, actor="cli:ops", reason=f"note {minutes}")
        versions.append((await stores.cases.standings(CARRIER)).version)
    assert versions == [start + 1, start + 2, start + 3]
    # a reseller's apply that changes what its gate enforces bumps what its own feed serves of that tenant
    served = (await stores.cases.standings(RESELLER)).version
    await stores.cases.apply_feed_standings(RESELLER, FeedStandings(CARRIER, 5, {"account:x": "s"}))
    assert (await stores.cases.standings(RESELLER)).version == served + 1
    await stores.cases.apply_feed_standings(RESELLER, FeedStandings(CARRIER, 5, {"account:x": "s"}))
    assert (await stores.cases.standings(RESELLER)).version == served + 1  # nothing changed: the same
    await carrier.drain()


def _forget_the_counter(kind: str, tmp_path: Path, redis_server: RedisServer) -> None:
    if kind == "sqlite":
        with closing(sqlite3.connect(tmp_path / "dncgate.sqlite3")) as conn, conn:
            conn.execute("DELETE FROM case_meta WHERE key = ?", (f"standings_version:{CARRIER}",))
        return
    with Redis.from_url(redis_server.url) as client:
        client.delete(case_keys.version(CARRIER))
