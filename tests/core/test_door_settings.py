"""``[agi]``/``[esl]`` session caps and peer allowlist: config keys, wired into the doors by serve."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from dncgate.esl import OutboundConfig
from dncgate.model import TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.sessions import ServerLimits
from dncgate.settings import AgiSettings, ConfigError, EslSettings, HttpServerSettings, Settings, StoreSettings, load
from tests.conftest import serving

HEADER = (
    "agi_network: yes\nagi_network_script: check?tenant=default&purpose=marketing\n"
    "agi_request: agi://127.0.0.1/check?tenant=default&purpose=marketing\nagi_channel: PJSIP/uac-1\n"
    "agi_uniqueid: 1.1\nagi_callerid: 4001234567\nagi_extension: 2015550123\nagi_arg_1: 2015550123\n\n"
)


def test_max_sessions_per_peer_is_a_key_of_both_call_doors(tmp_path: Path) -> None:
    path = tmp_path / "dncgate.toml"
    path.write_text("[agi]\nmax_sessions_per_peer = 3\n[esl]\nmax_sessions_per_peer = 5\n", encoding="utf-8")
    config = load(path, environ={"DNCGATE_ESL__MAX_SESSIONS_PER_PEER": "7"})
    assert (config.agi.max_sessions_per_peer, config.esl.max_sessions_per_peer) == (3, 7)
    path.write_text("[agi]\nmax_sessions_per_peer = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"agi\.max_sessions_per_peer"):
        load(path, environ={})


def test_the_doors_defaults_are_the_session_servers() -> None:
    """Written once: the schema's listener defaults are the ones ServerLimits and the ESL door use."""
    limits = ServerLimits()
    for table in (AgiSettings(), EslSettings()):
        assert (table.max_sessions, table.max_sessions_per_peer, table.allow) == (
            limits.max_sessions, limits.max_sessions_per_peer, limits.allow)
    assert EslSettings().port == OutboundConfig().port
    assert "max_sessions_per_peer" in msgspec.structs.asdict(HttpServerSettings())


async def _held_session(port: int) -> asyncio.StreamWriter:
    """An AGI session the gate is serving (its verdict sent, our answer never comes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADER.encode())
    assert (await asyncio.wait_for(reader.readline(), 30)).startswith(b"EXEC MSet")
    return writer


async def test_serve_caps_sessions_per_peer_as_configured(tmp_path: Path) -> None:
    config = Settings(
        source="test", store=StoreSettings(path=tmp_path / "serve.sqlite3"),
        tenants={"default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"))},
        agi=AgiSettings(enabled=True, port=0, max_sessions_per_peer=1), http=HttpServerSettings(enabled=False),
    )
    writers: list[asyncio.StreamWriter] = []
    try:
        async with serving(config) as running:
            assert running.agi_port
            writers.append(await _held_session(running.agi_port))
            reader, writer = await asyncio.open_connection("127.0.0.1", running.agi_port)
            writers.append(writer)
            writer.write(HEADER.encode())
            try:  # the second session of the same peer is closed unanswered
                refused = await asyncio.wait_for(reader.read(), 30)
            except ConnectionResetError:
                refused = b""
            assert refused == b""
    finally:
        for writer in writers:
            writer.close()
