"""``dncgate serve`` with ``[messages]``: the SMPP proxy and ``POST /v1/messages/check`` on one gate,
read from a TOML file like any deployment's."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest
import smpplib.client

from dncgate.api.keys import hash_key
from dncgate.settings import load
from tests.conftest import serving
from tests.messages.smsc import Smsc

KEY = "dncg_messages-serve-key-0123456789"


def _config(tmp_path: Path, smsc_port: int) -> Path:
    path = tmp_path / "dncgate.toml"
    path.write_text(f"""
[store]
path = "{tmp_path / 'gate.sqlite3'}"
[audit]
spool_dir = "{tmp_path / 'spool'}"
[agi]
port = 0
[http]
port = 0
[api]
enabled = true
[api.keys.sms]
tenant = "acme"
sha256 = "{hash_key(KEY)}"
[tenants.acme]
region = "CN"
[tenants.acme.hours]
enabled = false
[messages]
enabled = true
[messages.smpp]
enabled = true
port = 0
upstream_port = {smsc_port}
tenant = "acme"
[messages.tenants.acme.ports."106900001234"]
registered_for = "marketing"
entity = "bank-1"
accounts = ["bulk-1", "sms"]
""", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("DNCGATE_")]:
        monkeypatch.delenv(name)


async def test_serve_runs_the_smpp_proxy_and_the_http_check(tmp_path: Path) -> None:
    smsc = Smsc()
    await smsc.start()
    try:
        async with serving(load(_config(tmp_path, smsc.port))) as running:
            assert running.smpp_port is not None
            await running.gate.store.replace_list("national", [8613800138000])

            def submit(destination: str) -> int:
                client = smpplib.client.Client("127.0.0.1", running.smpp_port, timeout=10,
                                               allow_unknown_opt_params=True)
                client.connect()
                try:
                    client.bind_transmitter(system_id="bulk-1", password="pw")
                    client.send_message(source_addr_ton=0, source_addr="106900001234", dest_addr_ton=0,
                                        destination_addr=destination, short_message=b"Sale")
                    status = int(client.read_pdu().status)
                    client.unbind()
                    return status
                finally:
                    client.disconnect()

            assert await asyncio.to_thread(submit, "13800138000") == 0x101
            assert await asyncio.to_thread(submit, "13900139000") == 0
            async with aiohttp.ClientSession() as http:
                reply = await http.post(f"http://127.0.0.1:{running.http_port}/v1/messages/check",
                                        json={"from": "106900001234", "to": "13800138000"},
                                        headers={"Authorization": f"Bearer {KEY}"})
                body = await reply.json()
            assert (reply.status, body["reason"]) == (200, "national_dnc")
    finally:
        await smsc.close()
    assert [p.destination_addr for p in smsc.submits()] == [b"13900139000"]
