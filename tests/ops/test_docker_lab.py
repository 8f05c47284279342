"""The Docker lab's files, checked without Docker: the compose file against the Compose
specification's schema, and what review found missing (restart, health-gated start, the
subnet the gate allows, ready SIPp scenarios, the numbers file, the build context)."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dncgate.settings import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SCHEMA = ROOT / "tests/fixtures/compose-spec/compose-spec.json"
LONG_RUNNING = ("redis", "dncgate", "asterisk", "sipp-carrier")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose()), key=str)
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors] == []


def test_the_schema_check_would_catch_a_bad_file() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    bad = compose()
    bad["services"]["dncgate"]["restart"] = ["always"]  # a list where the spec wants a string
    bad["services"]["redis"]["healthcheck"]["interval"] = 2  # an int where the spec wants a duration
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(bad))) == 2


def test_long_running_services_restart_and_start_after_what_they_need_is_healthy() -> None:
    services = compose()["services"]
    assert {name: services[name].get("restart") for name in LONG_RUNNING} == dict.fromkeys(
        LONG_RUNNING, "unless-stopped")
    assert services["dncgate"]["depends_on"]["redis"] == {"condition": "service_healthy"}  # serve exits 2 without
    assert services["asterisk"]["depends_on"]["dncgate"] == {"condition": "service_healthy"}
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "HEALTHCHECK" in (DOCKER / "dncgate/Dockerfile").read_text(encoding="utf-8")


def test_the_gate_allows_the_lab_subnet_and_nothing_else_beyond_loopback() -> None:
    (subnet,) = [ipaddress.ip_network(c["subnet"]) for c in compose()["networks"]["lab"]["ipam"]["config"]]
    config = load(DOCKER / "dncgate/dncgate.toml")
    assert (config.agi.host, config.http.host) == ("0.0.0.0", "0.0.0.0")  # noqa: S104 -- the container's interfaces
    allowed = [ipaddress.ip_network(n) for n in config.agi.allow]
    assert subnet in allowed
    assert [n for n in allowed if n != subnet and not n.is_loopback] == []
    gate = compose()["services"]["dncgate"]["networks"]["lab"]["ipv4_address"]
    assert ipaddress.ip_address(gate) in subnet
    assert [t.hours for t in config.tenants.values()] == [None, None, None]  # a clear number is allowed at any hour


def test_a_bad_peer_network_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[agi]\nallow = ["172.28.53.0/33"]\n')
    with pytest.raises(ConfigError, match=r"agi\.allow: '172\.28\.53\.0/33' is not a network"):
        load(path)


def _sipp_commands() -> dict[str, list[str]]:
    return {name: service["command"] for name, service in compose()["services"].items()
            if service.get("build", {}).get("dockerfile") == "docker/sipp/Dockerfile"}


def test_every_sipp_run_uses_a_shipped_scenario_that_runs_as_is() -> None:
    calls = {name: command for name, command in _sipp_commands().items() if name != "sipp-carrier"}
    assert set(calls) == {"sipp-allowed", "sipp-listed", "sipp-checker-down", "sipp-fs-allowed", "sipp-fs-listed"}
    for name, command in calls.items():
        assert "-sn" not in command, name  # SIPp's built-in uac counts 183 + 607 as a failed call
        scenario = DOCKER / "sipp" / command[command.index("-sf") + 1]
        text = scenario.read_text(encoding="ISO-8859-1")
        assert "@" not in re.sub(r"sip:\S+@|<!--.*?-->", "", text, flags=re.DOTALL), scenario  # no template markers
        ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", text).encode("ISO-8859-1"))  # noqa: S314 -- our own file
        assert "sip:dialer@" in text  # the From user Asterisk's pjsip.conf identifies the dialer by
    assert "COPY docker/sipp/*.xml /scenarios/" in (DOCKER / "sipp/Dockerfile").read_text(encoding="utf-8")


def test_pjsip_identifies_the_dialer_by_username_not_by_a_hostname() -> None:
    text = (DOCKER / "asterisk/conf/pjsip.conf").read_text(encoding="utf-8")
    assert "endpoint_identifier_order = username" in text
    assert not re.search(r"^\s*type\s*=\s*identify", text, re.MULTILINE)
    assert not re.search(r"^\s*match\s*=", text, re.MULTILINE)


def test_the_numbers_file_is_shipped_described_and_holds_the_listed_number() -> None:
    numbers = (DOCKER / "numbers.txt").read_text(encoding="utf-8")
    assert "+12015550123" in numbers.splitlines()
    assert "+12015550124" not in numbers  # the allowed call's number
    assert "COPY docker/numbers.txt /usr/share/dncgate/numbers.txt" in (DOCKER / "dncgate/Dockerfile").read_text()
    assert "/usr/share/dncgate/numbers.txt" in (DOCKER / "README.md").read_text(encoding="utf-8")


def test_the_build_context_leaves_the_venv_and_git_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".venv", ".git", "**/__pycache__"} <= set(ignored)
    for service in compose()["services"].values():
        if "build" in service:
            assert service["build"]["context"] == ".."  # the repository root: where .dockerignore is


def test_the_readme_names_compose_v2_as_a_prerequisite_and_every_service_it_runs_exists() -> None:
    readme = (DOCKER / "README.md").read_text(encoding="utf-8")
    assert "Compose v2" in readme
    assert "docker-compose 1" in readme
    services = set(compose()["services"])
    for line in re.findall(r"^docker compose .*$", readme, re.MULTILINE):
        argv = shlex.split(line.split("#")[0])
        for verb in ("run", "stop", "exec", "cp"):
            if verb in argv:
                target = next(a for a in argv[argv.index(verb) + 1:] if not a.startswith("-"))
                assert target.split(":")[0] in services, line


def test_the_volumes_mount_files_that_exist() -> None:
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (DOCKER / source).resolve().exists(), volume
