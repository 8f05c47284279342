"""The ESL door never closes a call's socket before ``connect`` (issue 15 item 2).

On a real FreeSWITCH 1.11.1 a socket that closes before the gate sent ``connect`` leaves the call
parked (real-switch-facts.md), while one that closes after ``connect`` without a transfer continues
with the dialplan's reject (the recorded ``outbound_1_5559999``). So a call the gate has no room
for is answered with ``connect`` and then closed: exactly the recorded session. A peer outside
``allow`` is not a FreeSWITCH we trust and is closed at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from esl_helpers import FIXTURES, fixture_bytes, replay_as_freeswitch, transcript_steps
from fake_freeswitch import DIALPLAN, PARKED, FakeFreeSwitch, connect_reply

from dncgate.esl.outbound import OutboundConfig, OutboundServer, OutboundSession
from dncgate.sessions import ServerLimits

CONNECT_REPLY = fixture_bytes("extract_connect_reply_5550001.txt")
CLOSED_AFTER_CONNECT = "outbound_1_5559999"  # the recorded session after which the dialplan went on
OTHER = "127.0.0.2"


class Held:
    """A handler that holds its call until released."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.release = asyncio.Event()
        self.count = asyncio.Event()

    async def __call__(self, session: OutboundSession) -> None:
        self.entered.append(session.unique_id)
        self.count.set()
        await self.release.wait()


async def dial(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def hold_one(port: int, handler: Held, source: str = "127.0.0.1") -> asyncio.StreamWriter:
    reader, writer = await dial(port, source)
    assert await asyncio.wait_for(reader.readexactly(9), 30) == b"connect\n\n"
    writer.write(CONNECT_REPLY)
    await asyncio.wait_for(handler.count.wait(), 30)
    handler.count.clear()
    return writer


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(), 30)
    except ConnectionResetError:
        return b""


@pytest.fixture
def logs() -> Any:
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
async def held() -> AsyncIterator[Held]:
    handler = Held()
    yield handler
    handler.release.set()


def config(**kw: Any) -> OutboundConfig:
    return OutboundConfig(**({"port": 0, "connect_deadline": 2.0, "command_deadline": 2.0} | kw))


def one(logs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (entry,) = [e for e in logs if e["event"] == name]
    return entry


async def test_a_call_over_the_cap_gets_connect_then_the_dialplans_reject(
    held: Held, logs: list[dict[str, Any]],
) -> None:
    async with OutboundServer(held, config(), server_limits=ServerLimits(max_sessions=1)) as server:
        writer = await hold_one(server.port, held)
        sent = await replay_as_freeswitch(server.port, transcript_steps(CLOSED_AFTER_CONNECT))
        # Byte for byte what FreeSWITCH 1.11.1 was sent before it continued with the dialplan.
        assert sent == (FIXTURES / f"{CLOSED_AFTER_CONNECT}.tx.raw").read_bytes() == b"connect\n\n"
        assert server.refused_by == {"max_sessions": 1}
        held.release.set()
        writer.close()
    refused = one(logs, "door.server.session_refused")
    assert (refused["door"], refused["reason"], refused["active"]) == ("esl", "max_sessions", 1)
    call = one(logs, "esl.session.refused")
    assert (call["unique_id"], call["reason"]) == ("f851948c-3dd7-4c48-bcf8-570d4ab8eea7", "max_sessions")
    assert held.entered == ["51489bd7-f8d6-4b06-a0ac-50b6ef133f4b"]  # the refused call reached no handler
    assert server.outcomes == {"ok": 1}


async def test_the_fake_freeswitch_sees_no_verdict_only_the_close_after_connect(held: Held) -> None:
    async with OutboundServer(held, config(), server_limits=ServerLimits(max_sessions=1)) as server:
        writer = await hold_one(server.port, held)
        trace = await FakeFreeSwitch(connect_reply("outbound_2_85550001")).call(server.port)
        held.release.set()
        writer.close()
    assert trace.shorts() == []  # no transfer: the dialplan's fail-closed reject runs
    assert trace.ended_by == "server"
    assert trace.outcome == DIALPLAN != PARKED


async def test_one_peer_over_its_cap_is_refused_after_connect_another_is_served(
    held: Held, logs: list[dict[str, Any]],
) -> None:
    limits = ServerLimits(max_sessions=4, max_sessions_per_peer=1)
    async with OutboundServer(held, config(), server_limits=limits) as server:
        first = await hold_one(server.port, held, OTHER)
        reader, writer = await dial(server.port, OTHER)
        assert await asyncio.wait_for(reader.readexactly(9), 30) == b"connect\n\n"
        writer.write(CONNECT_REPLY)
        assert await until_closed(reader) == b""
        writer.close()
        second = await hold_one(server.port, held)  # 127.0.0.1 still gets a session
        assert server.active_sessions == 2
        assert server.sessions_of(OTHER) == 1
        held.release.set()
        first.close()
        second.close()
    assert len(held.entered) == 2
    assert one(logs, "door.server.session_refused")["reason"] == "max_sessions_per_peer"


async def test_a_peer_outside_allow_is_closed_without_connect(held: Held, logs: list[dict[str, Any]]) -> None:
    async with OutboundServer(held, config(), server_limits=ServerLimits(allow=("127.0.0.1/32",))) as server:
        reader, writer = await dial(server.port, OTHER)
        assert await until_closed(reader) == b""  # not a FreeSWITCH we trust: nothing sent
        writer.close()
        assert server.refused_by == {"not_allowed": 1}
    assert held.entered == []
    assert one(logs, "door.server.session_refused")["reason"] == "not_allowed"
    assert not [e for e in logs if e["event"] == "esl.session.refused"]


async def test_a_refusal_whose_peer_never_answers_connect_is_bounded(
    held: Held, logs: list[dict[str, Any]],
) -> None:
    async with OutboundServer(held, config(connect_deadline=0.2), server_limits=ServerLimits(max_sessions=1)) as server:
        writer = await hold_one(server.port, held)
        reader2, writer2 = await dial(server.port)
        assert await asyncio.wait_for(reader2.readexactly(9), 30) == b"connect\n\n"
        assert await until_closed(reader2) == b""  # closed by connect_deadline, never parked open
        writer2.close()
        held.release.set()
        writer.close()
    failed = one(logs, "esl.session.refusal_failed")
    assert (failed["error_type"], failed["reason"]) == ("EslTimeoutError", "max_sessions")
