"""Idle floods on each door of a running serve whose open-file limit is OPEN_FILES (issue 11 item
9): more connections than the process has descriptors, and the other doors' documented replies
while the flood lasts. Bounded counts; every wait is an upper bound, never a speed target."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import RedisServer
from tests.e2e.gate_process import STANDARD_LISTS, load_lists
from tests.e2e.lab import LOOPBACK, LabError
from tests.hostile.conftest import OPEN_FILES, Hostile, start_hostile
from tests.hostile.peers import Caps, close_all, descriptors_of, hostile_gate, http_get, open_idle
from tests.polls import poll_until

FLOOD = OPEN_FILES + 80  # more than the gate has descriptors


async def healthz_answers(hostile: Hostile) -> bool:
    for _ in range(60):  # bounded: the flood's last connections time out (header_timeout_s 2) first
        if (await http_get(hostile.gate.http_port, "/healthz"))[0] == 200:
            return True
        await asyncio.sleep(0.5)
    return False


def assert_no_accept_storm(hostile: Hostile) -> None:
    assert "socket.accept() out of system resource" not in hostile.log_text()
    assert len(hostile.events("acceptor.accept_failed")) <= 1


async def test_an_idle_http_flood_stops_no_other_door(hostile: Hostile) -> None:
    assert (await hostile.answers()).all
    [files] = hostile.events("gate.open_files")
    assert (files["soft"], files["hard"], files["needed"]) == (OPEN_FILES, OPEN_FILES, 64 + 2 * 32 + 64 + 64)
    flood = open_idle(hostile.gate.http_port, FLOOD)
    try:
        answers = await hostile.answers(http=False)  # HTTP itself is at its cap: accepting paused
        assert answers.agi, answers.detail
        assert answers.esl, answers.detail
        assert descriptors_of(hostile.pid) < OPEN_FILES
    finally:
        close_all(flood)
    assert await healthz_answers(hostile)
    assert_no_accept_storm(hostile)


@pytest.mark.parametrize("door", ["agi", "esl"])
async def test_an_idle_flood_on_a_call_door_stops_no_other_door(hostile: Hostile, door: str) -> None:
    port = hostile.gate.agi_port if door == "agi" else hostile.esl_port
    flood = open_idle(port, FLOOD)
    try:
        answers = await hostile.answers()
        other = answers.esl if door == "agi" else answers.agi
        assert other, answers.detail
        assert answers.http, answers.detail
        assert descriptors_of(hostile.pid) < OPEN_FILES
    finally:
        close_all(flood)
    for _ in range(60):  # bounded: the door's own sessions end at their deadlines, then it answers
        if (await hostile.answers()).all:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"{door} did not answer again after the flood")
    refused = [e for e in hostile.events("door.server.session_refused") if e.get("door") == door]
    assert len(refused) == 1  # once a minute per peer and reason, not once a connection
    assert_no_accept_storm(hostile)


def test_caps_the_open_file_limit_cannot_hold_are_refused(redis_server: RedisServer, tmp_path: Path) -> None:
    load_lists(redis_server.url, STANDARD_LISTS)
    gate, _ = hostile_gate(tmp_path / "gate", redis_server.url, open_files=200)
    with pytest.raises(LabError, match="exited with 2") as refused:
        gate.start()
    assert "the doors may hold 256 open files at once" in str(refused.value)
    assert "open-file limit is 200" in str(refused.value)


def refusals(hostile: Hostile) -> set[tuple[object, object]]:
    return {(e.get("door"), e.get("reason")) for e in hostile.events("door.server.session_refused")}


async def first_line(port: int, source: str) -> bytes:
    """What a call door sends a peer at ``source`` that connects and says nothing ("" if it closes)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port, local_addr=(source, 0))
    try:
        async with asyncio.timeout(10):
            return await reader.readline()
    finally:
        writer.close()


async def test_one_peer_cannot_hold_every_session_and_strangers_are_closed(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """Issue 11 item 10: the allowlist (here 127.0.0.1 and 127.0.0.2 only) and the per-peer cap
    (256 of the AGI door's 300 sessions) against a serve: 300 idle connections from 127.0.0.2 leave
    room for 127.0.0.1's call; 127.0.0.3 is closed at once by both call doors."""
    caps = Caps(agi_sessions=300, allow=("127.0.0.1/32", "127.0.0.2/32"))
    hostile = await asyncio.to_thread(start_hostile, tmp_path / "gate", redis_server, 600, caps)
    try:
        for port in (hostile.gate.agi_port, hostile.esl_port):
            assert await first_line(port, "127.0.0.3") == b""  # the ESL door sends no connect either
        flood = open_idle(hostile.gate.agi_port, 300, source="127.0.0.2")
        try:
            # beyond the listen backlog the kernel retries the flood's handshakes for a while: wait
            # (bounded) until the gate has seen the 257th from 127.0.0.2
            await poll_until(lambda: ("agi", "max_sessions_per_peer") in refusals(hostile), polls=3000)
            answers = await hostile.answers()
            assert answers.all, answers.detail
        finally:
            close_all(flood)
        assert refusals(hostile) == {("agi", "not_allowed"), ("esl", "not_allowed"), ("agi", "max_sessions_per_peer")}
    finally:
        hostile.gate.stop()
