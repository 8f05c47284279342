"""One configuration lookup for every program, and every problem of a configuration reported at once.

Before issue 10, ``dncgate serve`` read --config, else $DNCGATE_CONFIG, else defaults, while
``dncgate-agi`` also fell back to /etc/dncgate/dncgate.toml: with a file there and no variable set,
the two ran different tenants on different stores.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import structlog

from dncgate.agi.relay import gate_address
from dncgate.config_file import find_config
from dncgate.settings import ConfigError, load
from tests.conftest import run_cli, serving


@pytest.fixture(autouse=True)
def _no_dncgate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("DNCGATE_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def system(tmp_path: Path) -> Path:
    """Stands for /etc/dncgate/dncgate.toml."""
    path = tmp_path / "etc-dncgate.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "system.sqlite3"}"\n[agi]\nport = 4999\n', encoding="utf-8")
    return path


def test_find_config_order(tmp_path: Path, system: Path) -> None:
    missing = str(tmp_path / "no-such-system-file.toml")
    assert find_config("given.toml", {"DNCGATE_CONFIG": "env.toml"}, system=str(system)) == "given.toml"
    assert find_config(None, {"DNCGATE_CONFIG": "env.toml"}, system=str(system)) == "env.toml"
    assert find_config(None, {}, system=str(system)) == str(system)
    assert find_config(None, {}, system=missing) is None  # built-in defaults


def test_the_cli_and_classic_agis_relay_read_the_same_system_file(
    system: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli_with_system(capsys, system, "config", "check")
    assert code == 0, err
    assert f"configuration file: {system}" in out
    assert "agi: on 127.0.0.1:4999" in out
    # dncgate-agi, with no variable set, relays to the [agi] port of the same file
    assert gate_address({}, system=str(system)) == ("127.0.0.1", 4999)


def test_config_check_names_the_file_it_read(
    tmp_path: Path, system: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    named = tmp_path / "named.toml"
    named.write_text("[agi]\nport = 4800\n", encoding="utf-8")
    monkeypatch.setenv("DNCGATE_CONFIG", str(named))
    code, out, _ = run_cli_with_system(capsys, system, "config", "check")
    assert (code, f"configuration file: {named}" in out) == (0, True)
    code, out, _ = run_cli_with_system(capsys, tmp_path / "absent.toml", "--config", str(system), "config", "check")
    assert (code, f"configuration file: {system}" in out) == (0, True)
    monkeypatch.delenv("DNCGATE_CONFIG")
    code, out, _ = run_cli_with_system(capsys, tmp_path / "absent.toml", "config", "check")
    assert (code, "configuration file: none (built-in defaults)" in out) == (0, True)


def run_cli_with_system(capsys: pytest.CaptureFixture[str], system: Path, *argv: str) -> tuple[int, str, str]:
    from dncgate.cli import main

    code = main(["--log-level", "error", *argv], system_config=str(system))
    out, err = capsys.readouterr()
    return code, out, err


async def test_serve_logs_the_file_it_uses(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "s.sqlite3"}"\n[agi]\nport = 0\n[http]\nenabled = false\n',
                    encoding="utf-8")
    with structlog.testing.capture_logs() as logs:
        async with serving(load(path, environ={"DNCGATE_AUDIT__QUEUE_SIZE": "10"})):
            pass
    started = [entry for entry in logs if entry["event"] == "gate.started"]
    assert [entry["config"] for entry in started] == [str(path)]
    assert "DNCGATE_AUDIT__QUEUE_SIZE" in started[0]["source"]


BROKEN = """
[store]
backend = "mysql"
[agi]
port = "many"
max_sessions = 0
[esl]
strip_prefx = "8"
[tenants.acme]
mode = "dry-run"
[tenants.globex]
region = "XX"
[tenants.globex.hours]
weekday = "25:00-26:00"
[typo]
x = 1
"""


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path, environ={"DNCGATE_IVR__MAX_FAILURES": "lots"})
    problems = info.value.problems
    expected = [
        f"{path}: store.backend: 'mysql' is not one of sqlite, redis",
        f"{path}: agi.port: 'many' is not a whole number",
        f"{path}: agi.max_sessions: must be at least 1",
        f"{path}: esl.strip_prefx: unknown key",
        f"{path}: tenants.acme.mode: 'dry-run' is not one of enforce, monitor",
        f"{path}: tenants.globex.region: 'XX' is not a region code",
        f"{path}: tenants.globex.hours.weekday: ",
        f"{path}: typo: unknown key",
        f"environment DNCGATE_IVR__MAX_FAILURES (over {path}): ivr.max_failures: 'lots' is not a whole number",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), (start, problems)
    assert len(problems) == len(expected), problems


def test_config_check_prints_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(path), "config", "check")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 8, err
    assert all(line.startswith(f"dncgate: configuration error: {path}: ") for line in lines), err


def test_an_environment_value_is_converted_by_the_same_schema(tmp_path: Path) -> None:
    config = load(None, environ={"DNCGATE_SYNC__PUBLISH_DIR": "/srv/feed", "DNCGATE_ESL__ANNOUNCE": "no",
                                 "DNCGATE_SYNC__CLIENT_CERT": "", "DNCGATE_FEED__TOKENS": "a:1, b:2"})
    assert config.sync.publish_dir == Path("/srv/feed")
    assert config.sync.client_cert is None
    assert config.esl.announce is False
    assert config.feed.tokens == ("a:1", "b:2")
    with pytest.raises(ConfigError, match=r"^environment DNCGATE_STORE__TIMEOUT_MS: store.timeout_ms: must be between"):
        load(None, environ={"DNCGATE_STORE__TIMEOUT_MS": "0"})


def test_a_dial_plan_that_misreads_the_regions_own_numbers_is_a_config_error(tmp_path: Path) -> None:
    # Issue 11 item 8: the README's warning (never 011 in GB or IN) is enforced, with the key named.
    config = tmp_path / "dncgate.toml"
    config.write_text('[tenants.uk]\nregion = "GB"\ninternational_prefixes = ["00", "011"]\n'
                      '[tenants.cn]\nregion = "CN"\ntechnical_prefixes = ["X"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(config, environ={})
    text = str(caught.value)
    assert "tenants.uk" in text
    assert "'011' begins GB national numbers" in text
    assert "tenants.cn" in text
    assert "technical prefix 'X' is only X" in text
