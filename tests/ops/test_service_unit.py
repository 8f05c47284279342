"""The systemd unit: hardened as documented, and its ExecStart, run as written, serves and stops.

The test runs the unit's command line itself (no systemd here): the program path is replaced by
this installation's ``dncgate`` and the configuration path by a test file, nothing else.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from dncgate.install import UNIT_CONFIG, UNIT_EXEC, installed_command, shared
from tests.conftest import free_port, run_cli
from tests.serve_log import prepare_store, serve_process

HARDENING = {
    "User": "dncgate", "Group": "dncgate", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
    "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "StateDirectory": "dncgate",
    "WorkingDirectory": "/var/lib/dncgate", "ReadWritePaths": "/var/lib/dncgate", "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes", "SystemCallFilter": "@system-service", "Restart": "on-failure",
}


def unit_keys(text: str) -> dict[str, dict[str, str]]:
    """A unit file's sections and keys (the last of repeated keys wins; comments skipped)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        current[key.strip()] = value.strip()
    return sections


def _unit() -> dict[str, dict[str, str]]:
    return unit_keys(shared("systemd", "dncgate.service").read_text(encoding="utf-8"))


def test_the_unit_runs_serve_as_its_own_user_with_the_usual_hardening() -> None:
    service = _unit()["Service"]
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert shlex.split(service["ExecStart"]) == [UNIT_EXEC, "--config", UNIT_CONFIG, "serve"]
    assert _unit()["Install"] == {"WantedBy": "multi-user.target"}
    users = shared("systemd", "dncgate.sysusers").read_text(encoding="utf-8")
    assert [line.split()[:2] for line in users.splitlines() if line and not line.startswith("#")] == [["u", "dncgate"]]


def test_service_install_points_execstart_at_this_installation(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "service", "install", "--prefix", str(tmp_path))
    assert code == 0
    unit = tmp_path / "etc/systemd/system/dncgate.service"
    users = tmp_path / "etc/sysusers.d/dncgate.conf"
    sample = tmp_path / "etc/dncgate/dncgate.toml"
    assert out.splitlines() == [f"install           {path}" for path in (unit, users, sample)]
    assert sample.read_text(encoding="utf-8") == shared("dncgate.toml").read_text(encoding="utf-8")
    assert unit_keys(unit.read_text())["Service"]["ExecStart"] == f"{installed_command()} --config {UNIT_CONFIG} serve"
    code, out, _ = run_cli(capsys, "service", "install", "--prefix", str(tmp_path),
                           "--exec", "/opt/dncgate/bin/dncgate", "--dry-run")
    assert code == 1  # the unit written above differs now: kept
    assert "refused" in out
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                                check=False)
        assert (verify.returncode, verify.stderr) == (0, "")


def test_service_install_never_replaces_the_operators_configuration(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "etc/dncgate/dncgate.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[store]\nbackend = \"redis\"\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "service", "install", "--prefix", str(tmp_path), "--force")
    assert code == 0
    assert f"kept              {config} (yours: never replaced)" in out.splitlines()
    assert config.read_text(encoding="utf-8") == "[store]\nbackend = \"redis\"\n"


def test_service_install_refuses_a_relative_or_unquotable_program(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for program in ("bin/dncgate", "/opt/my gate/dncgate"):
        code, _, err = run_cli(capsys, "service", "install", "--prefix", str(tmp_path), "--exec", program, "--dry-run")
        assert code == 2
        assert program in err
    assert list(tmp_path.iterdir()) == []


def test_the_unit_s_command_line_as_written_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    http_port, agi_port = free_port(), free_port()
    config = tmp_path / "dncgate.toml"
    config.write_text(f"""
[store]
backend = "sqlite"
path = "dncgate.sqlite3"    # relative: in the working directory, as under StateDirectory
[agi]
host = "127.0.0.1"
port = {agi_port}
[http]
host = "127.0.0.1"
port = {http_port}
""")
    argv = shlex.split(_unit()["Service"]["ExecStart"])
    assert argv[0] == UNIT_EXEC
    assert argv.count(UNIT_CONFIG) == 1
    argv = [str(installed_command()), *(str(config) if arg == UNIT_CONFIG else arg for arg in argv[1:])]
    # `dncgate init` once in the state directory, and the national list loaded
    assert str(tmp_path / "dncgate.sqlite3") in prepare_store(argv[0], config, tmp_path, ["+12015550123"])
    with serve_process(argv, tmp_path) as (proc, log):
        started = log.until("gate.started")
        assert (started["agi_port"], started["http_port"]) == (agi_port, http_port)
        assert started["event_loop"] == "uvloop"  # [serve] event_loop's default
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=10) as reply:
            assert json.loads(reply.read())["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert (tmp_path / "dncgate.sqlite3").is_file()
