"""Issue 12 item 5: a reseller's gate receives the carrier's decisions about its originators through
the existing feed. A carrier's ``serve`` (enforcement on, its national list republished under
``[feed]``) and a reseller's ``serve`` on loopback, the carrier on a SQLite store, the reseller on
SQLite or Redis (the test's redis-server); the reseller's
``[sync]`` (``dncgate lists sync``: what serve's isolated sync runs) fetches the list and the
carrier's standings of its tenant ``reseller-a`` into the reseller's tenant ``acme``."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from dncgate.early_warning.alerts import OriginatorKey, OriginatorKind
from dncgate.enforcement.desk import EnforcementDesk
from dncgate.enforcement.model import CaseAction
from dncgate.gate import CheckRequest, Gate
from dncgate.lists.runner import sync_once
from dncgate.lists.sync import SyncError
from dncgate.model import Originator, Reason
from dncgate.settings import Settings, load
from dncgate.store.factory import open_store
from tests.conftest import RedisServer, serve_core_toml, serving
from tests.enforcement.conftest import Clock, alert
from tests.lists.sync_helpers import numbers, write_manifest, write_snapshot
from tests.polls import INTERVAL, POLLS
from tests.ports import port

LOG = structlog.get_logger("test")
BLASTER = OriginatorKey("reseller-a", OriginatorKind.ACCOUNT, "blaster")
CALLEE = numbers(5000, 1)[0]  # not listed: a marketing call to it is allowed unless the originator is not


def _config(tmp_path: Path, name: str, tenant: str, sync: str, tables: str = "",
            environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / f"{name}.toml"
    path.write_text(serve_core_toml(tmp_path, name) + f"""
[sync]
workdir = "{tmp_path / f'{name}-work'}"
{sync}
{tables}
[tenants.{tenant}.hours]
enabled = false
""", encoding="utf-8")
    return load(path, environ=environ or {})


def _carrier(tmp_path: Path, feed_port: int) -> Settings:
    drop = tmp_path / "national-drop"
    drop.mkdir()
    write_manifest(drop, write_snapshot(drop, 7, numbers(0, 100)), [], name="7.manifest.json")
    sync = f'source = "dir"\ndirectory = "{drop}"\npublish_dir = "{tmp_path / "feed"}"'
    return _config(tmp_path, "carrier", "reseller-a", sync, f"""
[feed]
enabled = true
port = {feed_port}
tokens = ["reseller-a:token-a", "reseller-b:token-b"]
[enforcement]
enabled = true
scheduler_interval_s = 3600""")


def _reseller(tmp_path: Path, feed_port: int, token: str, periodic: str = "", redis: str = "") -> Settings:
    """The reseller's configuration; ``redis``: the URL of its store (else its SQLite file)."""
    sync = (f'url = "http://127.0.0.1:{feed_port}/feed/"\nauth_header = "Authorization: Bearer {token}"\n'
            f'standings_tenant = "acme"\n{periodic}')
    environ = {"DNCGATE_STORE__BACKEND": "redis", "DNCGATE_STORE__URL": redis} if redis else {}
    return _config(tmp_path, "reseller", "acme", sync, environ=environ)


def _redis_url(backend: str, redis_server: RedisServer) -> str:
    if backend == "sqlite":
        return ""
    redis_server.flush()
    return redis_server.url


async def _sync(config: Settings, *, accept_older_standings: bool = False) -> list[str]:
    store = await open_store(config.store, create=True)
    try:
        return await sync_once(config, store, accept_older_standings=accept_older_standings)
    finally:
        await store.close()


async def _call(gate: Gate, account: str, tenant: str = "acme") -> Reason:
    request = CheckRequest(f"+{CALLEE}", "test", tenant=tenant, purpose="marketing",
                           originator=Originator(account=account))
    return (await gate.check(request, LOG)).decision.reason


async def _suspend(desk: EnforcementDesk, originator: OriginatorKey = BLASTER, alert_id: str = "camp-1") -> str:
    step = await desk.cases.on_alert(alert(alert_id, originator=originator))
    assert step is not None
    case_id = step.case.case_id
    await desk.cases.act("reseller-a", case_id, CaseAction.SUSPEND, actor="cli:ops", reason="campaign", urgent=True)
    return case_id


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_carrier_suspension_reaches_the_resellers_gate_and_its_reinstatement_lifts_it(
        tmp_path: Path, backend: str, redis_server: RedisServer) -> None:
    feed_port = port()
    carrier_config = _carrier(tmp_path, feed_port)
    reseller_config = _reseller(tmp_path, feed_port, "token-a", redis=_redis_url(backend, redis_server))
    await _sync(carrier_config)  # the carrier applies its national drop and republishes it in the feed
    async with serving(carrier_config) as carrier:
        desk = carrier.enforcement
        assert desk is not None
        first = await _sync(reseller_config)
        assert first[0].startswith("national: updated, sequence 7")
        assert first[-1] == "standings: version 0, +0 ~0 -0 (kept the reseller's own: 0)"
        async with serving(reseller_config) as reseller:
            assert await _call(reseller.gate, "blaster") is Reason.ALLOWED_CLEAR
            case_id = await _suspend(desk)
            assert await _call(carrier.gate, "blaster", "reseller-a") is Reason.ORIGINATOR_SUSPENDED
            assert await _call(reseller.gate, "blaster") is Reason.ALLOWED_CLEAR  # not synced yet
            applied = await _sync(reseller_config)
            assert applied[-1].startswith("standings: version ")
            assert applied[-1].endswith(", +1 ~0 -0 (kept the reseller's own: 0)")
            assert await _call(reseller.gate, "blaster") is Reason.ORIGINATOR_SUSPENDED  # from the next call
            assert await _call(reseller.gate, "someone-else") is Reason.ALLOWED_CLEAR
            again = await _sync(reseller_config)  # the same document again: nothing changes
            assert again[-1].endswith(", +0 ~0 -0 (kept the reseller's own: 0)")
            assert await _call(reseller.gate, "blaster") is Reason.ORIGINATOR_SUSPENDED

            await desk.cases.act("reseller-a", case_id, CaseAction.APPEAL, actor="api:reseller-a", reason="consents")
            await desk.cases.act("reseller-a", case_id, CaseAction.REINSTATE, actor="cli:ops", reason="consents shown")
            assert await _call(reseller.gate, "blaster") is Reason.ORIGINATOR_SUSPENDED  # until the next sync
            lifted = await _sync(reseller_config)
            assert lifted[-1].endswith(", +0 ~0 -1 (kept the reseller's own: 0)")
            assert await _call(reseller.gate, "blaster") is Reason.ALLOWED_CLEAR
            await desk.cases.drain()


async def test_a_suspension_made_after_the_carriers_clock_stepped_back_reaches_the_resellers_gate(
        tmp_path: Path) -> None:
    """The carrier's version never goes backwards (review of issue 12): its clock an hour back, the
    next suspension's document is still later than the one the reseller applied."""
    feed_port = port()
    carrier_config, reseller_config = _carrier(tmp_path, feed_port), _reseller(tmp_path, feed_port, "token-a")
    clock = Clock(datetime.now(UTC) + timedelta(hours=1))
    await _sync(carrier_config)
    async with serving(carrier_config, clock=clock) as carrier:
        desk = carrier.enforcement
        assert desk is not None
        case_id = await _suspend(desk)
        assert (await _sync(reseller_config))[-1].endswith(", +1 ~0 -0 (kept the reseller's own: 0)")
        clock.advance(hours=-1)  # an NTP correction at the carrier
        await desk.cases.act("reseller-a", case_id, CaseAction.NOTE, actor="cli:ops", reason="called them")
        await _suspend(desk, OriginatorKey("reseller-a", OriginatorKind.ACCOUNT, "second"), "camp-2")
        assert (await _sync(reseller_config))[-1].endswith(", +1 ~0 -0 (kept the reseller's own: 0)")
        async with serving(reseller_config) as reseller:
            assert await _call(reseller.gate, "second") is Reason.ORIGINATOR_SUSPENDED
            assert await _call(reseller.gate, "blaster") is Reason.ORIGINATOR_SUSPENDED
        await desk.cases.drain()


async def test_a_carrier_restored_from_a_backup_is_refused_until_the_reseller_accepts_it(tmp_path: Path) -> None:
    feed_port = port()
    carrier_config, reseller_config = _carrier(tmp_path, feed_port), _reseller(tmp_path, feed_port, "token-a")
    other, backup = OriginatorKey("reseller-a", OriginatorKind.ACCOUNT, "other"), tmp_path / "backup.sqlite3"
    await _sync(carrier_config)
    async with serving(carrier_config) as carrier:
        assert carrier.enforcement is not None
        await _suspend(carrier.enforcement, other, "camp-0")
        _copy_sqlite(carrier_config.store.path, backup)  # the carrier's backup: "other" suspended only
        await _suspend(carrier.enforcement)
        assert (await _sync(reseller_config))[-1].endswith(", +2 ~0 -0 (kept the reseller's own: 0)")
        await carrier.enforcement.cases.drain()
    _copy_sqlite(backup, carrier_config.store.path)  # restored: it serves an older version than was applied
    async with serving(carrier_config):
        refused = await _sync(reseller_config)
        assert refused[-1] == "standings: nothing applied (see the log), the standings applied before are kept"
        accepted = await _sync(reseller_config, accept_older_standings=True)  # the reseller operator's choice
        assert accepted[-1].endswith(", +0 ~0 -1 (kept the reseller's own: 0)")
    async with serving(reseller_config) as reseller:
        assert await _call(reseller.gate, "blaster") is Reason.ALLOWED_CLEAR
        assert await _call(reseller.gate, "other") is Reason.ORIGINATOR_SUSPENDED


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy (a restore, when ``target`` is the live file)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


async def test_a_feed_without_standings_or_out_of_reach_keeps_what_was_applied(tmp_path: Path) -> None:
    feed_port = port()
    carrier_config, reseller_config = _carrier(tmp_path, feed_port), _reseller(tmp_path, feed_port, "token-a")
    await _sync(carrier_config)
    async with serving(carrier_config) as carrier:
        assert carrier.enforcement is not None
        await _suspend(carrier.enforcement)
        assert (await _sync(reseller_config))[-1].endswith(", +1 ~0 -0 (kept the reseller's own: 0)")
        # reseller-b holds a token but the carrier has no tenant of that name: 404, nothing applied
        other = _reseller(tmp_path, feed_port, "token-b")
        kept = await _sync(other)
        assert kept[0].startswith("national: ")  # the list still syncs
        assert kept[-1] == "standings: nothing applied (see the log), the standings applied before are kept"
        await carrier.enforcement.cases.drain()
    with pytest.raises(SyncError, match=r"127\.0\.0\.1"):  # the carrier is gone: the list's sync fails...
        await _sync(reseller_config)
    async with serving(reseller_config) as reseller:  # ...and the standings applied before stay
        assert await _call(reseller.gate, "blaster") is Reason.ORIGINATOR_SUSPENDED


@pytest.mark.parametrize("isolate", [True, False])
async def test_the_resellers_serve_applies_them_in_its_periodic_sync(tmp_path: Path, isolate: bool) -> None:
    """serve's own [sync]: in a child process (``dncgate lists sync``, the default) or in the serving one."""
    feed_port = port()
    carrier_config = _carrier(tmp_path, feed_port)
    reseller_config = _reseller(tmp_path, feed_port, "token-a",
                                f"enabled = true\nisolate = {str(isolate).lower()}\ninterval_s = 3600")
    await _sync(carrier_config)
    async with serving(carrier_config) as carrier:
        assert carrier.enforcement is not None
        await _suspend(carrier.enforcement)
        async with serving(reseller_config) as reseller:  # its first sync runs as it starts
            for _ in range(POLLS * 3):
                if await _call(reseller.gate, "blaster") is Reason.ORIGINATOR_SUSPENDED:
                    break
                await asyncio.sleep(INTERVAL)
            else:
                raise AssertionError(f"the carrier's suspension did not reach the reseller in {POLLS * 3} polls")
            assert await _call(reseller.gate, "someone-else") is Reason.ALLOWED_CLEAR
        await carrier.enforcement.cases.drain()
