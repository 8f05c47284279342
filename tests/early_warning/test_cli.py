"""``dncgate alerts`` and ``dncgate cases``: the desk serve runs, from the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from dncgate.cli import main
from dncgate.early_warning.alerts import Alert, OriginatorKey, OriginatorKind, Severity
from dncgate.enforcement.desk import desk_of
from dncgate.settings import load
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.cases import SqliteCaseStore
from dncgate.store.sqlite.early_warning import SqliteEarlyWarningStore
from tests.enforcement.conftest import T0


def _config(tmp_path: Path) -> str:
    path = tmp_path / "dncgate.toml"
    path.write_text(f"""
[store]
path = "{tmp_path / 'dncgate.sqlite3'}"
[audit]
spool_dir = ""
[tenants.acme]
region = "CN"
[enforcement]
enabled = true
notice_period_s = 3600
[early_warning]
enabled = true
path = "{tmp_path / 'ew.sqlite3'}"
""", encoding="utf-8")
    return str(path)


async def _raise(config: str) -> str:
    settings = load(Path(config))
    store = SqliteListStore(settings.store.path)
    cases = SqliteCaseStore(settings.store.path)
    book = SqliteEarlyWarningStore(settings.early_warning.path)
    desk = desk_of(settings.enforcement, settings.tenants, cases, store, clock=lambda: T0, alerts=book)
    try:
        await desk.on_alert(Alert("ew-1", OriginatorKey("acme", OriginatorKind.ACCOUNT, "blaster"), "short_calls",
                                  Severity.WARNING, T0, "1h", {"short6_share": 0.8}, 0.55))
        case = await cases.open_case(OriginatorKey("acme", OriginatorKind.ACCOUNT, "blaster"))
        assert case is not None
        return case.case_id
    finally:
        for closable in (book, cases, store):
            await closable.close()


def run(capsys: pytest.CaptureFixture[str], config: str, *argv: str) -> tuple[int, list[dict[str, object]], str]:
    code = main(["--log-level", "error", "--config", config, *argv])
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    return code, lines, out.err


def test_alerts_and_cases_through_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    case_id = asyncio.run(_raise(config))
    code, alerts, _ = run(capsys, config, "alerts", "list", "--tenant", "acme")
    assert (code, [(a["alert_id"], a["acknowledged_by"]) for a in alerts]) == (0, [("ew-1", "")])
    code, acked, _ = run(capsys, config, "alerts", "ack", "ew-1", "--tenant", "acme", "--by", "ops:ann")
    assert (code, acked[0]["acknowledged_by"]) == (0, "ops:ann")
    assert run(capsys, config, "alerts", "list", "--tenant", "acme", "--unacknowledged")[1] == []
    assert run(capsys, config, "alerts", "ack", "ew-9", "--tenant", "acme")[0] == 1

    code, cases, _ = run(capsys, config, "cases", "list", "--tenant", "acme")
    assert (code, [c["case_id"] for c in cases]) == (0, [case_id])
    code, noticed, _ = run(capsys, config, "cases", "act", case_id, "notice", "--tenant", "acme", "--reason", "r1",
                           "--key", "k1")
    assert (code, noticed[0]["case"]["state"]) == (0, "noticed")  # type: ignore[index]
    code, again, _ = run(capsys, config, "cases", "act", case_id, "notice", "--tenant", "acme", "--reason", "r1",
                         "--key", "k1")
    assert (code, again[0]["replayed"]) == (0, True)
    code, _, err = run(capsys, config, "cases", "act", case_id, "suspend", "--tenant", "acme", "--reason", "now",
                       "--urgent")
    assert code == 0
    code, _, err = run(capsys, config, "cases", "act", case_id, "suspend", "--tenant", "acme", "--reason", "x")
    assert (code, "refused" in err) == (1, True)  # already suspended
    code, appealed, _ = run(capsys, config, "cases", "appeal", case_id, "--tenant", "acme", "--reason", "we consent")
    assert (code, appealed[0]["case"]["state"]) == (0, "appealed")  # type: ignore[index]
    code, decided, _ = run(capsys, config, "cases", "decide", case_id, "reinstate", "--tenant", "acme",
                           "--reason", "consent shown")
    assert (code, decided[0]["case"]["standing"]) == (0, "clear")  # type: ignore[index]
    code, shown, _ = run(capsys, config, "cases", "show", case_id, "--tenant", "acme")
    actions = [t["action"] for t in shown[0]["transitions"]]  # type: ignore[attr-defined]
    assert actions[:2] == ["open", "notice"]
    assert "suspend" in actions
    assert actions[-2:] == ["appeal", "reinstate"]
    out = tmp_path / "case.json"
    assert run(capsys, config, "cases", "export", case_id, "--tenant", "acme", "--output", str(out))[0] == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [t["action"] for t in document["transitions"]] == actions


def test_bad_input_is_refused_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    case_id = asyncio.run(_raise(config))
    code, _, err = run(capsys, config, "cases", "show", "case-nope", "--tenant", "acme")
    assert (code, "no case 'case-nope'" in err) == (1, True)
    code, _, err = run(capsys, config, "cases", "list", "--tenant", "nobody")
    assert (code, "no tenant 'nobody'" in err) == (2, True)
    code, _, err = run(capsys, config, "cases", "decide", case_id, "uphold", "--tenant", "acme", "--reason", "x")
    assert code == 1  # no appeal to decide
    code, _, err = run(capsys, config, "cases", "act", case_id, "suspend", "--tenant", "acme", "--reason", " ",
                       "--urgent")
    assert code == 1
    for action in ("close",):
        assert run(capsys, config, "cases", "act", case_id, action, "--tenant", "acme", "--reason", "done")[0] == 0
    code, _, err = run(capsys, config, "cases", "appeal", case_id, "--tenant", "acme", "--reason", "late")
    assert (code, "refused" in err) == (1, True)  # an appeal on a closed case


def test_alerts_need_the_early_warning_and_config_check_shows_it(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["--log-level", "error", "--config", config, "config", "check"]) == 0
    shown = capsys.readouterr().out
    assert f"early warning: on {tmp_path / 'ew.sqlite3'}" in shown
    assert "tenant acme: originator account, zone UTC, 15 rules (13 acting, 2 report only)" in shown
    off = tmp_path / "off.toml"
    off.write_text(Path(config).read_text(encoding="utf-8").replace("[early_warning]\nenabled = true",
                                                                     "[early_warning]\nenabled = false"))
    code, _, err = run(capsys, str(off), "alerts", "list", "--tenant", "acme")
    assert (code, "[early_warning] is not enabled" in err) == (2, True)  # a configuration matter
