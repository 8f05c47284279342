"""List age: filled into every decision from a cached value, list_stale past the tenant's maximum;
``dncgate lists sync`` from a drop directory configured in TOML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from prometheus_client import CollectorRegistry, generate_latest

from dncgate.audit import AuditSink
from dncgate.cli import main
from dncgate.gate import CheckRequest, Gate
from dncgate.lists.freshness import ListFreshness
from dncgate.lists.sources import DropDirSource
from dncgate.lists.sync import Syncer, SyncError, SyncJob
from dncgate.lists.sync_metrics import SyncMetrics
from dncgate.model import Reason, StaleAction, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.store.sqlite import SqliteListStore
from tests.conftest import TEST_STORE_DEADLINE
from tests.lists.sync_helpers import numbers, write_manifest, write_snapshot

US = DialPlan(region="US")
TENANTS = {
    "strict": TenantPolicy("strict", dial_plan=US, stale_action=StaleAction.REJECT),
    "uk": TenantPolicy("uk", dial_plan=US, stale_action=StaleAction.REJECT, max_list_age=timedelta(days=28)),
    "relaxed": TenantPolicy("relaxed", dial_plan=US),  # alarm only
}


async def test_stale_list_rejects_marketing_for_tenants_that_chose_reject(tmp_path: Path) -> None:
    store = SqliteListStore(tmp_path / "g.sqlite3")
    drop = tmp_path / "drop"
    drop.mkdir()
    now = [datetime.now(UTC)]
    freshness = ListFreshness(store, TENANTS, clock=lambda: now[0])
    registry = CollectorRegistry()
    metrics = SyncMetrics(registry)
    metrics.watch(freshness)
    audit = AuditSink(store)
    audit.start()
    gate = Gate(TENANTS, store, audit, store_deadline=TEST_STORE_DEADLINE, list_age=freshness.age)
    log = structlog.get_logger("test")
    try:
        await freshness.refresh()
        unknown = await gate.check(CheckRequest("+12015559999", "cli", tenant="strict"), log)
        # nothing loaded: a failed check (list_missing) whatever stale_action says
        assert unknown.decision.reason is Reason.LIST_MISSING
        write_manifest(drop, write_snapshot(drop, 1, numbers(0, 10)), name="1.manifest.json")
        await Syncer(store, DropDirSource(drop), SyncJob(workdir=tmp_path / "w"), observer=metrics).sync_once()
        await freshness.refresh()
        clear = await gate.check(CheckRequest("+12015559999", "cli", tenant="strict"), log)
        listed = await gate.check(CheckRequest(f"+{numbers(0, 1)[0]}", "cli", tenant="strict"), log)
        assert (clear.decision.reason, listed.decision.reason) == (Reason.ALLOWED_CLEAR, Reason.NATIONAL_DNC)
        now[0] += timedelta(days=29)  # past the UK's 28 days, inside the US's 31
        await freshness.refresh()
        reasons = [(await gate.check(CheckRequest("+12015559999", "cli", tenant=t), log)).decision.reason
                   for t in ("strict", "uk", "relaxed")]
        assert reasons == [Reason.ALLOWED_CLEAR, Reason.LIST_STALE, Reason.ALLOWED_CLEAR]
        service = await gate.check(CheckRequest("+12015559999", "cli", tenant="uk", purpose="service"), log)
        assert service.decision.reason is Reason.ALLOWED_SERVICE  # only marketing is rejected
        now[0] += timedelta(days=3)
        await freshness.refresh()
        assert freshness.stale_tenants == {"strict", "uk", "relaxed"}
        text = generate_latest(registry).decode()
        assert 'dncgate_list_stale{list="national",tenant="relaxed"} 1.0' in text
        assert 'dncgate_list_sequence{list="national"} 1.0' in text
        assert 'dncgate_list_numbers{list="national"} 10.0' in text
        age = next(line for line in text.splitlines() if line.startswith("dncgate_list_age_seconds{"))
        assert 32 * 86400 - 60 < float(age.split()[-1]) < 32 * 86400 + 60
        # A failed sync is counted by cause.
        write_manifest(drop, None, [], name="2.manifest.json", list_name="tenant:x")
        with pytest.raises(SyncError):
            await Syncer(store, DropDirSource(drop), SyncJob(workdir=tmp_path / "w"), observer=metrics).sync_once()
        assert 'dncgate_sync_failures_total{cause="manifest",list="national"} 1.0' in generate_latest(registry).decode()
    finally:
        await audit.close()
        await store.close()


def test_cli_lists_sync_from_a_drop_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 100)), name="1.manifest.json")
    write_manifest(drop, write_snapshot(drop, 2, numbers(0, 50)), name="2.manifest.json")
    config = tmp_path / "dncgate.toml"
    config.write_text(f"""
[store]
path = "{tmp_path / 'g.sqlite3'}"
[sync]
source = "dir"
directory = "{drop}"
workdir = "{tmp_path / 'work'}"
""")
    assert main(["--config", str(config), "lists", "sync"]) == 14  # 10 + the index of "shrink"
    err = capsys.readouterr().err
    assert "sync failed (shrink)" in err
    assert "Traceback" not in err
    write_manifest(drop, write_snapshot(drop, 2, numbers(0, 50)), name="3.manifest.json")
    assert main(["--config", str(config), "lists", "sync", "--force"]) == 0
    out = capsys.readouterr().out
    assert "national: updated, sequence 2, snapshot 2 (50 numbers)" in out
    assert main(["--config", str(config), "lists", "stats"]) == 0
    assert "numbers=50 " in capsys.readouterr().out


def test_bad_sync_configuration_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dncgate.toml"
    config.write_text('[sync]\nenabled = true\nsource = "http"\nurl = "ftp://x"\n')
    assert main(["--config", str(config), "lists", "sync"]) == 2
    assert "sync.url: an http source needs" in capsys.readouterr().err


def test_lists_sync_without_a_source_says_so_before_creating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 (review): no [sync] source configured used to create the store's directory and then
    fail with ``/manifest.json: InvalidUrlClientError``."""
    store_path = tmp_path / "x" / "nope" / "x.sqlite3"
    monkeypatch.setenv("DNCGATE_STORE__PATH", str(store_path))
    config = tmp_path / "dncgate.toml"
    config.write_text("")
    assert main(["--config", str(config), "lists", "sync"]) == 2
    err = capsys.readouterr().err
    assert "no [sync] source is set" in err
    assert "InvalidUrl" not in err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()
    config.write_text('[sync]\nurl = "ftp://x"\n')  # not enabled for serve, but asked to sync now
    assert main(["--config", str(config), "lists", "sync"]) == 2
    assert "an http source needs an http:// or https:// URL" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
