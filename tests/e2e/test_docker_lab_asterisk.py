"""The Docker lab's Asterisk configuration (docker/asterisk/conf/*.conf) in the e2e tests' real Asterisk.

No Docker here: the lab's files are loaded as they are, with only the container addresses made
loopback (each substitution must match exactly once, so a change to the lab's files shows here),
next to the real gate configured by docker/dncgate/dncgate.toml (Redis, hosts and ports made
local the same way). The three calls are placed with the shipped scenarios of docker/sipp/; the
carrier is SIPp's built-in uas, as in compose.yaml.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import ports
from tests.conftest import RedisServer
from tests.e2e.gate_process import GateProcess
from tests.e2e.lab import LOOPBACK, AsteriskLab, LabError, _terminate, free_udp_port

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ALLOWED, LISTED = "912015550124", "912015550123"  # as the compose file's sipp-* services dial

pytestmark = pytest.mark.e2e
# Log lines about the lab's files: theirs by name, or from the modules that read them.
LAB_FILES = r"\b(pjsip|extensions|extensions_dncgate|manager|rtp|modules)\.conf\b"
OURS = LAB_FILES + r"|\] (ERROR|WARNING)\[\d+\] (res_pjsip|pbx_config|manager|rtp)"
# modules.conf autoloads every module: without the Debian package's sample configurations (the
# image has them in /etc/asterisk; this session directory holds only the lab's) the other
# modules say so, and the ones that need them decline. Those lines are about other files.
OTHER_FILES = (r"(Unable to load config|declined to load|Declined modules|Action '\w+' already registered)"
               rf"(?!.*{LAB_FILES})")


def substitute(text: str, *pairs: tuple[str, str]) -> str:
    """``text`` with each ``old`` replaced by ``new``; each ``old`` must occur exactly once."""
    for old, new in pairs:
        count = len(re.findall(rf"^{re.escape(old)}$", text, re.MULTILINE))
        assert count == 1, f"{old!r} occurs {count} times in the lab's file"
        text = re.sub(rf"^{re.escape(old)}$", new.replace("\\", "\\\\"), text, flags=re.MULTILINE)
    return text


class DockerConfLab(AsteriskLab):
    """The e2e lab's Asterisk (its asterisk.conf and logger.conf) running the Docker lab's files."""

    def __init__(self, chroot: Path, *, gate_port: int, carrier_port: int, artifacts: Path) -> None:
        super().__init__(chroot, gate_port=gate_port, artifacts=artifacts)
        self.carrier_port = carrier_port

    def _write_config(self) -> None:
        super()._write_config()  # the directories, asterisk.conf, logger.conf, the operator's include
        conf, etc = DOCKER / "asterisk/conf", self.session_dir / "etc"
        files = {
            "extensions.conf": [("DNCGATE_HOST = dncgate", f"DNCGATE_HOST = {LOOPBACK}"),
                                ("DNCGATE_PORT = 4573", f"DNCGATE_PORT = {self.initial_globals['DNCGATE_PORT']}")],
            "pjsip.conf": [("bind = 0.0.0.0:5060", f"bind = {LOOPBACK}:{self.sip_port}"),
                           ("contact = sip:sipp-carrier:5060", f"contact = sip:{LOOPBACK}:{self.carrier_port}")],
            "manager.conf": [("bindaddr = 0.0.0.0", f"bindaddr = {LOOPBACK}"),
                             ("port = 5038", f"port = {self.ami_port}")],
            "rtp.conf": [("rtpstart = 10000", f"rtpstart = {self.rtp_start}"),
                         ("rtpend = 10100", f"rtpend = {self.rtp_end}")],
            "modules.conf": [],
        }
        assert sorted(files) == sorted(p.name for p in conf.glob("*.conf"))  # every file of the image
        for name, pairs in files.items():
            (etc / name).write_text(substitute((conf / name).read_text(encoding="utf-8"), *pairs))
        with (etc / "manager.conf").open("a") as manager:  # the harness's own AMI user (lab.cli)
            manager.write(f"\n[{self.ami_user}]\nsecret = {self.ami_secret}\nread = all\nwrite = all\n")


def docker_gate_config(redis_url: str, agi_port: int, http_port: int) -> str:
    return substitute(
        (DOCKER / "dncgate/dncgate.toml").read_text(encoding="utf-8"),
        ('url = "redis://redis:6379/0"', f'url = "{redis_url}"'),
        ("port = 4573", f"port = {agi_port}"), ("port = 9464", f"port = {http_port}"),
    ).replace('host = "0.0.0.0"', f'host = "{LOOPBACK}"')


@pytest.fixture(scope="module")
def docker_gate(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateProcess]:
    redis_server.flush()
    gate = GateProcess(tmp_path_factory.mktemp("docker-gate"), redis_server.url)
    gate.config_text = docker_gate_config(redis_server.url, gate.agi_port, gate.http_port)
    try:
        gate.start()
    except LabError as exc:
        pytest.fail(f"the gate did not start with docker/dncgate/dncgate.toml: {exc}", pytrace=False)
    try:
        loaded = gate.cli("lists", "load", "--list", "national", str(DOCKER / "numbers.txt"))  # the README's step
        assert loaded.returncode == 0, loaded.stderr
        yield gate
    finally:
        gate.stop()


@pytest.fixture(scope="module")
def carrier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """SIPp's built-in uas on a loopback port, as the compose file's sipp-carrier."""
    port, workdir = free_udp_port(), tmp_path_factory.mktemp("carrier")
    with (workdir / "uas.stdout").open("wb") as out:
        proc = subprocess.Popen(["sipp", "-sn", "uas", "-i", LOOPBACK, "-p", str(port), "-mp", str(ports.media_block()),
                                 "-nostdin"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=workdir)
    try:
        yield port
    finally:
        _terminate(proc)


@pytest.fixture(scope="module")
def docker_asterisk(asterisk_chroot: Path, docker_gate: GateProcess, carrier: int,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerConfLab]:
    lab = DockerConfLab(asterisk_chroot, gate_port=docker_gate.agi_port, carrier_port=carrier,
                        artifacts=tmp_path_factory.mktemp("docker-calls"))
    try:
        lab.start()
    except LabError as exc:
        lab.cleanup()
        pytest.fail(f"Asterisk did not start with docker/asterisk/conf: {exc}", pytrace=False)
    try:
        yield lab
    finally:
        lab.stop()
        lab.cleanup()


def call(lab: DockerConfLab, scenario: str, number: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """One call with a shipped scenario, run as the compose file runs it (plus loopback and ports)."""
    return subprocess.run(
        ["sipp", f"{LOOPBACK}:{lab.sip_port}", "-sf", str(DOCKER / "sipp" / scenario), "-s", number, "-m", "1",
         "-i", LOOPBACK, "-p", str(free_udp_port()), "-mp", str(ports.media_block()), "-nostdin",
         "-timeout", "60s", "-timeout_error", "-trace_msg", "-message_file", str(workdir / "messages.log")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90, check=False, cwd=workdir)


def _codes(workdir: Path) -> list[str]:
    return re.findall(r"^SIP/2\.0 (\d{3})", (workdir / "messages.log").read_text(errors="replace"), re.MULTILINE)


def test_the_docker_dialplan_and_pjsip_configuration_load(docker_asterisk: DockerConfLab) -> None:
    endpoints = docker_asterisk.cli("pjsip show endpoints")
    assert re.search(r"Endpoint:\s+dialer\b", endpoints)
    assert re.search(r"Endpoint:\s+carrier\b", endpoints)
    assert not re.search(r"^\s*Identify:\s+\w", endpoints, re.MULTILINE)  # by username: no identify entry
    outbound = docker_asterisk.cli("dialplan show outbound-dncgate")
    assert "'_9X.'" in outbound
    assert "'_8X.'" in outbound
    assert "'s'" in docker_asterisk.cli("dialplan show dncgate-check")
    lines = [line for line in docker_asterisk.log_text().splitlines() if re.search(r"\b(ERROR|WARNING)\[", line)]
    assert [line for line in lines if "Error loading module" in line] == []  # modules.conf's noload list holds
    problems = [line for line in lines if re.search(OURS, line) and not re.search(OTHER_FILES, line)]
    assert problems == []


def test_the_three_shipped_scenarios_run_through_the_docker_configuration(
        docker_asterisk: DockerConfLab, docker_gate: GateProcess, tmp_path: Path) -> None:
    for name, scenario, number, codes in (
        ("allowed", "allowed.xml", ALLOWED, "200"),
        ("listed", "listed.xml", LISTED, "183 607"),
    ):
        workdir = tmp_path / name
        workdir.mkdir()
        result = call(docker_asterisk, scenario, number, workdir)
        assert result.returncode == 0, (name, _codes(workdir), result.stdout[-2000:])
        assert set(codes.split()) <= set(_codes(workdir)), name
    docker_gate.stop()  # docker compose stop dncgate
    workdir = tmp_path / "checker-down"
    workdir.mkdir()
    result = call(docker_asterisk, "checker-down.xml", ALLOWED, workdir)
    assert result.returncode == 0, (_codes(workdir), result.stdout[-2000:])
    assert "603" in _codes(workdir)
    assert "183" not in _codes(workdir)  # no announcement when the gate cannot be asked

