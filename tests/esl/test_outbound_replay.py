"""The outbound server against byte-exact FreeSWITCH 1.11.1 dialogues.

A fake FreeSWITCH dials the server and plays the recorded rx bytes; the bytes
our server sends must equal the recorded tx bytes.  The handlers below are the
reference reject / allow flows for the call-handler author.
"""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from esl_helpers import fixture_bytes, replay_as_freeswitch, transcript_steps, uuid_sequence

from dncgate.esl.outbound import OutboundConfig, OutboundServer, OutboundSession

WAV = "/srv/lab-fs/sounds/dnc_announcement.wav"
TONE = "tone_stream://%(400,200,913.8);%(400,200,1370.6);%(600,200,1776.7)"


def config(**kw: Any) -> OutboundConfig:
    base: dict[str, Any] = {"port": 0, "connect_deadline": 2.0, "command_deadline": 2.0, "event_deadline": 2.0}
    base.update(kw)
    return OutboundConfig(**base)


async def run_replay(name: str, handler: Any, uuids: tuple[str, ...] = ()) -> tuple[bytes, list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(handler, config(), uuid_factory=uuid_sequence(*uuids)) as server:
            sent = await replay_as_freeswitch(server.port, transcript_steps(name))
    return sent, logs


def closed_outcome(logs: list[dict[str, Any]]) -> str:
    (closed,) = [e for e in logs if e["event"] == "esl.session.closed"]
    return str(closed["outcome"])


@pytest.mark.parametrize(
    ("name", "uuids", "cause"),
    [
        (
            "outbound_1_5550001",
            ("0b51e1cf-5eed-43b8-b762-7a3d4c21026f", "08b67079-1dd6-452e-af98-731df64b5f2e"),
            "CALL_REJECTED",
        ),
        (
            "outbound_2_85550001",
            ("e3b743e5-6b29-48b1-9715-3fe2eb319102", "1cbc954c-5980-439d-9975-9fe7f5d79076"),
            "CALL_REJECTED",
        ),
    ],
)
async def test_reject_path_replay(name: str, uuids: tuple[str, ...], cause: str) -> None:
    seen: dict[str, Any] = {}

    async def reject(session: OutboundSession) -> None:
        seen["destination"] = session.channel.destination_number
        await session.myevents()
        await session.linger()
        seen["sip_req_user"] = await session.getvar("sip_req_user")
        pre = await session.execute("pre_answer", wait=True)
        assert pre is not None
        seen["pre_answer"] = pre.application_response
        done = await session.execute("playback", WAV, wait=True)
        assert done is not None
        seen["playback"] = done.application_response
        await session.hangup(cause)
        seen["events"] = [e.name async for e in session.events()]
        seen["notice"] = session.disconnect_notice

    sent, logs = await run_replay(name, reject, uuids)
    assert sent == fixture_bytes(f"{name}.tx.raw")
    assert seen["sip_req_user"] == seen["destination"]
    assert seen["pre_answer"] == "_none_"
    assert seen["playback"] == "FILE PLAYED"
    assert seen["events"][-1] == "CHANNEL_HANGUP_COMPLETE"
    assert seen["notice"].headers["Content-Disposition"] == "linger"
    assert closed_outcome(logs) == "ok"


async def test_reject_with_linger_5_and_unwanted() -> None:
    events: list[str] = []

    async def reject(session: OutboundSession) -> None:
        await session.myevents()
        await session.linger(5)
        await session.execute("pre_answer", wait=True)
        await session.execute("playback", TONE, wait=True)
        await session.hangup("UNWANTED")
        async for event in session.events():
            if event.name == "CHANNEL_HANGUP_COMPLETE":
                events.append(event.hangup_cause or "")

    sent, logs = await run_replay(
        "outbound_2_5550002",
        reject,
        ("2afcdad1-794b-4d7c-9783-62684fde2241", "30392d8a-97e5-4164-bab2-69fcca5fa08f"),
    )
    assert sent == fixture_bytes("outbound_2_5550002.tx.raw")
    assert events == ["UNWANTED"]
    assert closed_outcome(logs) == "ok"


async def test_reject_with_respond_603_and_interleaved_park_event() -> None:
    async def reject(session: OutboundSession) -> None:
        await session.myevents()
        await session.linger()
        await session.execute("pre_answer", wait=True)
        await session.execute("playback", TONE, wait=True)
        await session.execute("respond", "603 Decline")
        names = [e.name async for e in session.events()]
        assert names[0] == "CHANNEL_PARK"  # arrived before pre_answer, still queued in order
        assert "CHANNEL_HANGUP_COMPLETE" in names

    sent, logs = await run_replay(
        "outbound_3_5550003",
        reject,
        (
            "9ee3e717-f222-41ec-9341-e5f225582589",
            "6ac42cea-e9a1-4260-a72a-fa5d3126d5cc",
            "ae12c1de-b55f-4535-a8d5-eb0962d6bf50",
        ),
    )
    assert sent == fixture_bytes("outbound_3_5550003.tx.raw")
    assert closed_outcome(logs) == "ok"


async def test_allow_fail_closed_transfer_replay() -> None:
    seen: dict[str, Any] = {}

    async def allow(session: OutboundSession) -> None:
        await session.myevents()
        done = await session.execute("transfer", "dnc_ok_5551003 XML public", wait=True)
        assert done is not None
        seen["transfer"] = (done.application, done.application_response)
        # The socket app itself completes once the transfer moved the channel on.
        async for event in session.events():
            if event.name == "CHANNEL_EXECUTE_COMPLETE" and event.application == "socket":
                seen["socket_done"] = True
        seen["notice"] = session.disconnect_notice

    sent, logs = await run_replay("outbound_1_85551003", allow, ("bd77de45-ca74-451d-b24c-dd2888164abc",))
    assert sent == fixture_bytes("outbound_1_85551003.tx.raw")
    assert seen["transfer"] == ("transfer", "_none_")
    assert seen["socket_done"] is True
    assert seen["notice"].headers["Content-Disposition"] == "disconnect"
    assert closed_outcome(logs) == "ok"


async def test_allow_resume_exit_replay() -> None:
    seen: dict[str, Any] = {}

    async def allow(session: OutboundSession) -> None:
        await session.myevents("json")
        assert (await session.resume()).reply_text == "+OK"
        assert (await session.exit()).reply_text == "+OK bye"
        seen["events"] = [e async for e in session.events()]
        seen["notice"] = session.disconnect_notice

    sent, logs = await run_replay("outbound_4_5551000", allow)
    assert sent == fixture_bytes("outbound_4_5551000.tx.raw")
    assert seen["events"] == []
    assert seen["notice"].body_text.startswith("Disconnected, goodbye.")
    assert closed_outcome(logs) == "ok"


async def test_allow_bridge_json_events_replay() -> None:
    names: list[str] = []

    async def allow(session: OutboundSession) -> None:
        await session.myevents("json")
        await session.linger(5)
        await session.execute("bridge", "sofia/gateway/uas/5551001")
        async for event in session.events():
            assert event.format == "json"
            names.append(event.name)

    sent, logs = await run_replay("outbound_5_5551001", allow, ("f9edb97c-1c50-48ba-ba22-d398e48f9c31",))
    assert sent == fixture_bytes("outbound_5_5551001.tx.raw")
    assert {"CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE"} <= set(names)
    assert names[-1] == "CHANNEL_HANGUP_COMPLETE"
    assert closed_outcome(logs) == "ok"


async def test_handler_returning_at_once_closes_socket_after_connect() -> None:
    called: list[str] = []

    async def crash_like(session: OutboundSession) -> None:
        called.append(session.unique_id)

    sent, logs = await run_replay("outbound_1_5559999", crash_like)
    assert sent == fixture_bytes("outbound_1_5559999.tx.raw") == b"connect\n\n"
    assert called == ["f851948c-3dd7-4c48-bcf8-570d4ab8eea7"]
    assert closed_outcome(logs) == "ok"
