"""A fake Asterisk replays the recorded FastAGI sessions against our server, byte for byte."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest

from dncgate.agi import AgiDeadChannel, AgiInvalidCommand, AgiSession, AgiUsageError, SessionOutcome
from tests.agi.agi_helpers import (
    HANGUPWAIT,
    TRANSCRIPT,
    USAGE520,
    asterisk_parse_args,
    load_transcript,
    replay,
)
from tests.agi.conftest import ServerFactory, events, no_tracebacks, wait_idle

# Where the recording's script chose another (equivalent) quoting than our encoder, the bytes we send.
# Asterisk's parse_args() gives the same words for both; every other line must match byte for byte.
OUR_SPELLING = {
    b"SET VARIABLE DNC_RESULT REJECT\n": b'SET VARIABLE DNC_RESULT "REJECT"\n',
    b'SET VARIABLE "X_QUOTED" "a b c"\n': b'SET VARIABLE X_QUOTED "a b c"\n',
    b"EXEC NoSuchApp foo\n": b'EXEC NoSuchApp "foo"\n',
    b"NOOP hello\n": b'NOOP "hello"\n',
    b"SET VARIABLE FOO bar\n": b'SET VARIABLE FOO "bar"\n',
    b"NOOP x\n": b'NOOP "x"\n',
}


def assert_sent_matches(sent: list[bytes], name: str) -> None:
    recorded = [ex.command for ex in load_transcript(name).exchanges]
    assert len(sent) == len(recorded)
    for ours, theirs in zip(sent, recorded, strict=True):
        assert asterisk_parse_args(ours.decode()[:-1]) == asterisk_parse_args(theirs.decode()[:-1])
        assert ours == OUR_SPELLING.get(theirs, theirs)


async def test_transcript_replay(make_server: ServerFactory, logs: list[MutableMapping[str, Any]]) -> None:
    got: dict[str, Any] = {}

    async def handler(s: AgiSession) -> None:
        got["request"] = s.request
        await s.verbose("fastagi transcript start", 1)
        got["cid"] = await s.get_variable("CALLERID(num)")
        got["missing"] = await s.get_variable("DOES_NOT_EXIST")
        got["full"] = await s.get_full_variable("${CALLERID(num)}-${EXTEN}-${CHANNEL}")
        await s.set_variable("DNC_RESULT", "REJECT")
        got["dnc"] = await s.get_variable("DNC_RESULT")
        await s.set_variable("X_QUOTED", "a b c")
        got["quoted"] = await s.get_variable("X_QUOTED")
        got["status"] = (await s.command("CHANNEL STATUS")).result
        got["progress"] = await s.exec("Progress")
        got["playback"] = await s.exec("Playback", "beep,noanswer")
        got["beep"] = await s.stream_file("beep")
        got["missing_file"] = await s.stream_file("nonexistent-file")
        got["no_app"] = await s.exec("NoSuchApp", "foo")
        try:
            await s.command("BOGUS COMMAND")
        except AgiInvalidCommand as exc:
            got["bogus"] = exc
        await s.noop("hello")
        got["hung_up"] = s.hung_up

    server = await make_server(handler)
    result = await replay(server.port, load_transcript(TRANSCRIPT))

    assert_sent_matches(result.sent, TRANSCRIPT)
    assert result.closed_by_server
    assert result.tail == b""
    assert got["request"].script == "/transcript"
    assert got["cid"] == "15551230000"
    assert got["missing"] is None
    assert got["full"] == "15551230000-705550100-PJSIP/uac-00000011"
    assert got["dnc"] == "REJECT"
    assert got["quoted"] == "a b c"
    assert got["status"] == 4
    assert (got["progress"], got["playback"], got["no_app"]) == (0, 0, -2)
    assert (got["beep"].result, got["beep"].endpos) == (0, 3520)
    assert (got["missing_file"].result, got["missing_file"].endpos) == (-1, 0)
    assert got["bogus"].code == 510
    assert got["bogus"].reply.text == "Invalid or unknown command"
    assert got["hung_up"] is False
    await wait_idle(server)
    assert server.outcomes[SessionOutcome.OK] == 1
    assert no_tracebacks(logs)


async def test_hangupwait_replay(make_server: ServerFactory, logs: list[MutableMapping[str, Any]]) -> None:
    got: dict[str, Any] = {}
    dead: list[int] = []

    async def handler(s: AgiSession) -> None:
        got["progress"] = await s.exec("Progress")
        got["monkeys"] = await s.stream_file("tt-monkeys")
        got["hung_up_before"] = s.hung_up
        got["cid"] = await s.get_variable("CALLERID(num)")  # HANGUP arrives first, then this reply
        got["hung_up_after"] = s.hung_up
        await s.set_variable("FOO", "bar")
        got["foo"] = await s.get_variable("FOO")
        got["full"] = await s.get_full_variable("${FOO}-${EXTEN}")
        await s.verbose("after hangup", 1)
        got["playback"] = await s.exec("Playback", "beep")
        for coro in (s.stream_file("beep"), s.command("CHANNEL STATUS"), s.command("ANSWER"),
                     s.command("WAIT FOR DIGIT 100"), s.hangup()):
            try:
                await coro
            except AgiDeadChannel as exc:
                dead.append(exc.code)
        await s.noop("x")

    server = await make_server(handler)
    result = await replay(server.port, load_transcript(HANGUPWAIT))

    assert_sent_matches(result.sent, HANGUPWAIT)
    assert result.closed_by_server
    assert result.tail == b""
    assert got["progress"] == 0
    assert (got["monkeys"].result, got["monkeys"].endpos) == (-1, 16160)
    assert got["hung_up_before"] is False  # result=-1 alone does not mean hangup
    assert got["cid"] == "15551230000"
    assert got["hung_up_after"] is True
    assert got["foo"] == "bar"
    assert got["full"] == "bar-715550100"
    assert got["playback"] == -1
    assert dead == [511] * 5
    await wait_idle(server)
    assert server.outcomes[SessionOutcome.OK] == 1
    notices = events(logs, "agi.session.hangup_notice")
    assert len(notices) == 1
    assert notices[0]["uniqueid"] == "1795809161.18"
    assert notices[0]["channel"] == "PJSIP/uac-00000012"
    assert no_tracebacks(logs)


@pytest.mark.parametrize("split_hangup", [True, False])
async def test_hangup_before_reply_in_one_or_two_segments(make_server: ServerFactory, split_hangup: bool) -> None:
    seen: list[tuple[str | None, bool]] = []

    async def handler(s: AgiSession) -> None:
        await s.exec("Progress")
        await s.stream_file("tt-monkeys")
        seen.append((await s.get_variable("CALLERID(num)"), s.hung_up))

    server = await make_server(handler)
    await replay(server.port, load_transcript(HANGUPWAIT), split_hangup=split_hangup)
    assert seen == [("15551230000", True)]


async def test_multiline_520_then_next_reply(make_server: ServerFactory) -> None:
    """Regression (c): panoramisk read only the first line of a 520 and mis-paired every later reply."""
    got: dict[str, Any] = {}

    async def handler(s: AgiSession) -> None:
        try:
            await s.command("GET VARIABLE")
        except AgiUsageError as exc:
            got["usage"] = exc
        got["cid"] = await s.get_variable("CALLERID(num)")
        await s.set_variable("DNC_RESULT", "ALLOW")

    server = await make_server(handler)
    result = await replay(server.port, load_transcript(USAGE520))
    assert [ex.command for ex in load_transcript(USAGE520).exchanges] == result.sent
    assert got["usage"].code == 520
    assert "Example return code: 200 result=1 (testvariable)" in got["usage"].usage
    assert got["cid"] == "15551230000"  # not the "200 result=1 (testvariable)" line from the usage text
    await wait_idle(server)
    assert server.outcomes[SessionOutcome.OK] == 1

