"""``dncgate check``: one exit code per outcome (``dncgate.cli.codes``), ``--json`` with stable keys;
``lists stats --json``; the progress bars of ``lists load``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dncgate.cli import codes
from tests.conftest import cli_store_env, free_port, run_cli

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lists"
CHECK_KEYS = ["verdict", "reason", "outcome", "mode", "tenant", "purpose", "category", "dialled", "callee", "list",
              "list_version", "sip_code", "announcement", "detail", "decision_id", "latency_us", "exit_code"]


@pytest.fixture
def listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    """A CN tenant, calling hours off, +8613800138000 on the national list."""
    db = cli_store_env(tmp_path, monkeypatch, "CN")
    monkeypatch.setenv("DNCGATE_TENANTS__DEFAULT__HOURS__ENABLED", "false")
    numbers = tmp_path / "national.txt"
    numbers.write_text("+8613800138000\n", encoding="utf-8")
    assert run_cli(capsys, "lists", "load", "--list", "national", str(numbers))[0] == 0
    return db


@pytest.mark.parametrize(("argv", "code", "reason"), [
    (["13800138001"], codes.ALLOW, "allowed_clear"),
    (["13800138000", "--purpose", "service"], codes.ALLOW, "allowed_service"),
    (["13800138000"], codes.REJECT, "national_dnc"),
    (["12"], codes.CHECK_FAILED, "invalid_number"),  # the check cannot be made: the failure policy answers
])
def test_exit_code_says_the_decision(listed: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                                     reason: str) -> None:
    got, out, err = run_cli(capsys, "check", *argv)
    assert got == code, err
    assert f"reason={reason} " in out.splitlines()[0]
    got, out, _ = run_cli(capsys, "check", "--json", *argv)
    decision = json.loads(out)
    assert (got, decision["reason"], decision["exit_code"]) == (code, reason, code)


def test_monitor_mode_allows_with_code_0(listed: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGATE_TENANTS__DEFAULT__MODE", "monitor")
    code, out, _ = run_cli(capsys, "check", "--json", "13800138000")
    decision = json.loads(out)
    assert (code, decision["verdict"], decision["outcome"]) == (codes.ALLOW, "allow", "reject")


def test_json_keys_are_the_same_every_time(listed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shapes = []
    for number in ("13800138000", "13800138001", "110", "12"):
        _, out, _ = run_cli(capsys, "check", "--json", number)
        assert out.count("\n") == 1  # one object, one line
        shapes.append(list(json.loads(out)))
    assert shapes == [CHECK_KEYS] * 4


def test_store_down_is_a_failed_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Redis not reachable (nothing listens on the port): exit 3, whatever the verdict printed."""
    cli_store_env(tmp_path, monkeypatch, "CN")
    monkeypatch.setenv("DNCGATE_STORE__BACKEND", "redis")
    monkeypatch.setenv("DNCGATE_STORE__URL", f"redis://127.0.0.1:{free_port()}/0")
    code, out, err = run_cli(capsys, "check", "--json", "13800138000")
    assert code == codes.CHECK_FAILED, (out, err)
    assert "Traceback" not in err
    assert out.count("\n") == 1  # --json: one object, whether or not a decision was made
    printed = json.loads(out)
    assert list(printed) == CHECK_KEYS
    assert printed["exit_code"] == codes.CHECK_FAILED
    if printed["verdict"] is not None:  # the gate decided without its store: the tenant's failure policy
        assert printed["reason"] == "check_failed"
    else:  # the store could not even be opened: no decision, and why
        assert "store error" in printed["detail"]
        assert "check failed" in err


@pytest.mark.parametrize("argv", [
    ["check"],  # no number
    ["check", "13800138000", "--bogus"],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, *argv)
    assert exit_info.value.code == codes.USAGE


def test_unknown_tenant_exits_2(listed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "check", "13800138000", "--tenant", "acme")
    assert (code, out) == (codes.USAGE, "")
    assert "--tenant acme: no tenant 'acme' is configured (tenants: default)" in err


def test_configuration_error_exits_2(listed: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGATE_TENANTS__DEFAULT__MODE", "sometimes")
    code, _, err = run_cli(capsys, "check", "13800138000")
    assert code == codes.USAGE
    assert "tenants.default.mode: 'sometimes' is not one of enforce, monitor" in err


def test_lists_stats_json(listed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "lists", "stats", "--json")
    assert code == 0
    stats = [json.loads(line) for line in out.splitlines()]
    assert [list(s) for s in stats] == [["list", "version", "numbers", "prefix_rules", "loaded_at", "detail"]]
    assert (stats[0]["list"], stats[0]["numbers"], stats[0]["prefix_rules"]) == ("national", 1, 0)


@pytest.mark.parametrize("gzipped", [False, True])
def test_load_progress_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           gzipped: bool) -> None:
    """--progress: the share of the file read (its bytes: compressed ones for gzip) then of the
    numbers written, with the time left, on standard error; the report alone on standard output."""
    import gzip

    cli_store_env(tmp_path, monkeypatch, "CN")
    text = "".join(f"+86138{n:08d}\n" for n in range(50_000)).encode()
    path = tmp_path / ("national.txt.gz" if gzipped else "national.txt")
    path.write_bytes(gzip.compress(text) if gzipped else text)
    code, out, err = run_cli(capsys, "lists", "load", "--progress", "--list", "national", str(path))
    assert code == 0, err
    assert out.startswith("national: read 50,000 lines; loaded 50,000 as version")
    assert "reading: 100%" in err
    assert "writing: 100%" in err
    assert "50.0k/50.0k" in err  # numbers written of the distinct numbers
    assert "<" in err.split("writing")[1]  # tqdm's [elapsed<left, rate]


def test_no_progress_bar_when_stderr_is_not_a_terminal(listed: Path, capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    numbers = tmp_path / "more.txt"
    numbers.write_text("+8613800138002\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "lists", "load", "--list", "national", str(numbers))  # capsys: not a terminal
    assert (code, err) == (0, "")


def test_sync_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lists sync --progress: the snapshot's numbers written out of its size, on standard error."""
    from tests.lists.sync_helpers import numbers, write_manifest, write_snapshot

    drop = tmp_path / "drop"
    drop.mkdir()
    write_manifest(drop, write_snapshot(drop, 1, numbers(0, 3000)), name="1.manifest.json")
    config = tmp_path / "dncgate.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "g.sqlite3"}"\n[sync]\nsource = "dir"\n'
                      f'directory = "{drop}"\nworkdir = "{tmp_path / "work"}"\n', encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(config), "lists", "sync", "--progress")
    assert code == 0, err
    assert "national: updated, sequence 1, snapshot 1 (3,000 numbers)" in out
    assert "writing: 100%" in err
    assert "3.00k/3.00k" in err


def test_file_offset_is_how_far_this_process_read(tmp_path: Path) -> None:
    from dncgate.cli.progress import file_offset

    path = tmp_path / "list.txt"
    path.write_bytes(b"x" * 10_000)
    assert file_offset(path) is None  # not open
    with path.open("rb", buffering=0) as f:
        f.read(4096)
        assert file_offset(path) == 4096
    assert file_offset(path, fds=tmp_path / "no-proc") is None  # no /proc: the bar counts lines instead


def test_load_progress_counts_lines_where_the_offset_is_unknown(tmp_path: Path) -> None:
    import io

    from dncgate.cli.progress import LoadBars

    path = tmp_path / "list.txt"
    path.write_bytes(b"+8613800138000\n" * 3)
    stream = io.StringIO()
    bars = LoadBars(path, stream)
    bars.read(3)  # no descriptor open on the file: no offset, so lines without a total
    bars.written(3, 3)
    bars.close()
    text = stream.getvalue()
    assert "reading: 3.00 lines [" in text
    assert "writing: 100%" in text
