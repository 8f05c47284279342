"""Every entry point decides through ``dncgate.app.open_app``: the same call gets the same decision.

The regression (issue 10): a tenant with ``stale_action = "reject"``, a fresh national list loaded
with ``dncgate lists load``, and ``dncgate check`` answered ``REJECT list_stale`` ("national list is
None old") because only serve passed the list's age to its Gate; classic AGI deciding in-process
did the same.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from dncgate.api.keys import hash_key
from dncgate.app import open_app
from dncgate.settings import load
from tests.conftest import run_cli, serving

KEY = "dncg_test-key-for-the-one-root"
LISTED, CLEAR = "2015550123", "2015550124"
# What every door must answer, for the tenant below and a fresh national list holding LISTED.
EXPECTED = {LISTED: ("reject", "national_dnc"), CLEAR: ("allow", "allowed_clear")}


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config with a stale_action=reject tenant, and the national list loaded by ``dncgate lists load``."""
    for name in [n for n in os.environ if n.startswith("DNCGATE_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "dncgate.toml"
    path.write_text(f"""
[store]
path = "{tmp_path / 'gate.sqlite3'}"
[agi]
port = 0
[http]
port = 0
[api]
enabled = true
[api.keys.crm]
tenant = "default"
sha256 = "{hash_key(KEY)}"
[tenants.default]
region = "US"
stale_action = "reject"
[tenants.default.hours]
enabled = false
""", encoding="utf-8")
    listed = tmp_path / "national.txt"
    listed.write_text(f"+1{LISTED}\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(path), "lists", "load", "--list", "national", str(listed))
    assert code == 0, err
    return path


def agi_header(number: str, *, network: bool) -> bytes:
    script = "agi_network: yes\nagi_network_script: check?tenant=default&purpose=marketing\n" if network else ""
    args = "" if network else "agi_arg_2: tenant=default\nagi_arg_3: purpose=marketing\n"
    return (f"{script}agi_request: dncgate-agi\nagi_channel: PJSIP/uac-1\nagi_uniqueid: 1.1\n"
            f"agi_callerid: 4001234567\nagi_extension: {number}\nagi_arg_1: {number}\n{args}\n").encode()


def verdict_of(commands: bytes) -> tuple[str, str]:
    found = re.search(rb"DNCGATE_VERDICT=(\w+).*DNCGATE_REASON=(\w+)", commands)
    assert found is not None, commands
    return found[1].decode(), found[2].decode()


def test_dncgate_check(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for number, (verdict, reason) in EXPECTED.items():
        code, out, err = run_cli(capsys, "--config", str(config), "check", number)
        assert code == (0 if verdict == "allow" else 1), err  # dncgate.cli.codes: ALLOW, REJECT
        assert out.startswith(f"{verdict.upper()}  reason={reason} "), out
        assert "list_stale" not in out


def test_classic_agi_in_process(config: Path) -> None:
    binary = Path(sys.executable).parent / "dncgate-agi"
    env = dict(os.environ, DNCGATE_CONFIG=str(config), DNCGATE_AGI_RELAY="off", DNCGATE_LOG_LEVEL="error")
    for number, expected in EXPECTED.items():
        # Asterisk answers each command with 200 result=0: the answers can all be written up front.
        done = subprocess.run([str(binary)], input=agi_header(number, network=False) + b"200 result=0\n" * 8,
                              capture_output=True, env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert verdict_of(done.stdout) == expected


async def fastagi_call(port: int, number: str) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = b""
    try:
        writer.write(agi_header(number, network=True))
        for _ in range(8):  # the check sends a handful of commands, then closes
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                break
            sent += line
            writer.write(b"200 result=0\n")
            await writer.drain()
    finally:
        writer.close()
    return verdict_of(sent)


async def test_serve_fastagi_and_api(config: Path) -> None:
    gc.unfreeze()  # whatever an earlier serve of this process froze
    async with serving(load(config, environ={})) as running, aiohttp.ClientSession() as http:
        assert gc.get_freeze_count() > 0  # start-up's objects out of the collector's walks
        assert running.agi_port
        assert running.http_port
        for number, expected in EXPECTED.items():
            assert await fastagi_call(running.agi_port, number) == expected
            async with http.get(f"http://127.0.0.1:{running.http_port}/v1/check",
                                params={"number": number, "purpose": "marketing"},
                                headers={"Authorization": f"Bearer {KEY}"}) as response:
                body = await response.json()
            assert response.status == 200, body
            assert (body["verdict"], body["reason"]) == expected


async def test_open_app_knows_the_lists_age_before_the_first_call(config: Path) -> None:
    async with open_app(load(config, environ={})) as app:
        assert app.gate.list_age is not None
        age = app.gate.list_age()
        assert age is not None
        assert age < app.settings.tenants["default"].max_list_age
