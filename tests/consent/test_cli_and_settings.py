"""`dncgate consent export|verify|purge`, `dncgate api-key new`, and the [consent], [api] and hours settings."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from dncgate.api.keys import hash_key
from dncgate.cli import main
from dncgate.consent.model import Action
from dncgate.hours import Window
from dncgate.settings import ConfigError, ConsentSettings, load
from dncgate.store.sqlite.ledger import SqliteLedger
from tests.consent.conftest import event


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "dncgate.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "db.sqlite3"}"\n[tenants.acme]\nregion = "CN"\n{extra}')
    return path


async def _fill(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "db.sqlite3", ConsentSettings(), clock=lambda: datetime(2025, 1, 2, tzinfo=UTC))
    try:
        await ledger.append(event(Action.GRANT))
        await ledger.append(event(Action.DECLINE, categories=("food",)))
    finally:
        await ledger.close()


def test_export_verify_and_purge_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_fill(tmp_path))
    config = str(_config(tmp_path))
    out = tmp_path / "acme.csv"
    assert main(["--config", config, "consent", "export", "--tenant", "acme", "--format", "csv", "--output",
                 str(out)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert (manifest["records"], manifest["head_seq"]) == (2, 2)
    assert main(["--config", config, "consent", "verify", str(out)]) == 0
    assert "complete, 2 records" in capsys.readouterr().out
    out.write_text(out.read_text().replace("food", "health"))
    assert main(["--config", config, "consent", "verify", str(out)]) == 1
    assert "NOT complete" in capsys.readouterr().err
    now = datetime.now(UTC).isoformat()
    assert main(["--config", config, "consent", "purge", "--tenant", "acme", "--before", now, "--by", "ops"]) == 2
    assert "retention" in capsys.readouterr().err
    assert main(["--config", config, "consent", "purge", "--tenant", "acme", "--before", "2025-06-01T00:00:00Z",
                 "--by", "dpo@example"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["action"] == "purge"
    assert json.loads(record["detail"])["deleted"] == 2
    assert json.loads(record["detail"])["by"] == "dpo@example"


def test_api_key_new_prints_only_a_hash_for_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(_config(tmp_path)), "api-key", "new", "--tenant", "acme"]) == 0
    captured = capsys.readouterr()
    key = captured.err.split(": ")[-1].strip()
    assert key.startswith("dncg_")
    assert key not in captured.out
    config = load(_config(tmp_path, "[api]\nenabled = true\n" + captured.out))
    assert config.api.enabled
    assert next(iter(config.api.keys.values())).sha256 == hash_key(key)
    assert next(iter(config.api.keys.values())).tenant == "acme"


def test_hours_consent_and_api_settings(tmp_path: Path) -> None:
    config = load(_config(tmp_path, """
[tenants.acme.hours]
weekday = "09:00-20:00"
weekend = "closed"
holidays = ["2026-10-01"]
[tenants.acme.hours.zone_overrides]
"+86991" = "Asia/Urumqi"
[tenants.off]
region = "CN"
[tenants.off.hours]
enabled = false
[consent]
categories = ["finance", "games"]
retention_months = 12
"""))
    hours = config.tenants["acme"].hours
    assert hours is not None
    assert hours.weekday == Window(time(9), time(20))
    assert hours.weekend is None
    assert hours.holidays == frozenset({date(2026, 10, 1)})
    assert hours.zone_overrides == (("86991", ("Asia/Urumqi",)),)
    assert config.tenants["off"].hours is None
    assert config.consent == ConsentSettings(("finance", "games"), 12)
    default = load(None, {})
    assert default.tenants["default"].hours is not None  # on by default, 08:00-21:00
    assert default.consent.retention_months == 5
    assert not default.api.enabled


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[tenants.acme.hours]\nweekday = "21:00-08:00"', "tenants.acme.hours.weekday"),
        ('[tenants.acme.hours]\nholidays = ["soon"]', "holidays"),
        ('[tenants.acme.hours]\nweekend_days = ["funday"]', "weekend_days"),
        ('[tenants.acme.hours.zone_overrides]\n"+86" = "Mars/Base"', "zone_overrides"),
        ('[tenants.acme.hours]\nlunch = "12:00-13:00"', "unknown key"),
        ("[consent]\nretention_months = 4", "at least 5"),
        ('[consent]\ncategories = ["Finance"]', "categories"),
        ('[api.keys.k1]\ntenant = "nobody"\nsha256 = "' + "0" * 64 + '"', "not a configured tenant"),
        ('[api.keys.k1]\ntenant = "acme"\nsha256 = "the-key-itself"', "sha256"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(_config(tmp_path, extra))
