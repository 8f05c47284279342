"""The IVR over FreeSWITCH's outbound socket against the replaying fake FreeSWITCH.

The connect reply is one recorded from FreeSWITCH 1.11.1 with ``dncgate_app=ivr`` (and the
tenant) added as the dialplan's ``set`` would; the fake answers every command as FreeSWITCH did
in the recordings. For ``play_and_get_digits`` it puts the caller's digits into the channel
variable the handler named, in the CHANNEL_EXECUTE_COMPLETE event, as FreeSWITCH does (its
recorded execute-complete events carry every ``variable_*``).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from dncgate.consent.model import Action, Channel
from dncgate.esl.check import esl_check_handler
from dncgate.esl.outbound import OutboundConfig, OutboundServer
from dncgate.ivr.esl import ivr_esl_handler, with_esl_ivr
from dncgate.settings import EslSettings
from tests.esl.fake_freeswitch import (
    _DISCONNECT,
    CallTrace,
    Command,
    FakeFreeSwitch,
    connect_reply,
    with_destination,
    with_variables,
)
from tests.ivr.conftest import CALLER, IvrLab

SOUNDS = "/usr/share/freeswitch/sounds"
RECORDED = connect_reply("outbound_1_85551003")  # caller ID 2125550100, destination 85551003
PGD = "play_and_get_digits"
HANGUP = "HANGUP"  # in FakeIvrSwitch.keys: the caller hangs up during that question


def with_caller(reply: bytes, number: str, *, hidden: bool = False) -> bytes:
    quoted = urllib.parse.quote(number, safe="").encode()
    reply = re.sub(rb"^(Caller-Caller-ID-Number|Channel-Caller-ID-Number): .*$",
                   lambda m: m.group(1) + b": " + quoted, reply, flags=re.M)
    flag = b"true" if hidden else b"false"
    return re.sub(rb"^(Caller-Privacy-Hide-Number|Channel-Privacy-Hide-Number): .*$",
                  lambda m: m.group(1) + b": " + flag, reply, flags=re.M)


def ivr_reply(number: str = CALLER, *, hidden: bool = False, **variables: str) -> bytes:
    return with_variables(with_caller(RECORDED, number, hidden=hidden),
                          **({"dncgate_app": "ivr", "dncgate_tenant": "acme"} | variables))


@dataclass
class FakeIvrSwitch(FakeFreeSwitch):
    """Each play_and_get_digits takes the next entry of ``keys`` ("" = nothing pressed in time,
    HANGUP = the caller hangs up: the disconnect-notice instead of the execute-complete)."""

    keys: list[str] = field(default_factory=list)
    in_event: bool = True  # False: leave the variable out of the event (the handler must uuid_getvar)

    def _complete(self, command: Command) -> bytes:
        frame = super()._complete(command)
        if command.app != PGD:
            return frame
        keys = self.keys.pop(0) if self.keys else ""
        if keys == HANGUP:
            return _DISCONNECT
        if not keys or not self.in_event:
            return frame
        var = (command.arg or "").split(" ")[7]
        _, _, body = frame.partition(b"\n\n")
        body = body.rstrip(b"\n") + f"\nvariable_{var}: {urllib.parse.quote(keys)}\n\n".encode()
        return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


@dataclass
class EslLab:
    lab: IvrLab

    async def call(self, peer: FakeFreeSwitch) -> tuple[CallTrace, list[dict[str, Any]]]:
        handler = with_esl_ivr(esl_check_handler(self.lab.gate, EslSettings(strip_prefix="8", sounds_dir=SOUNDS)),
                               ivr_esl_handler(self.lab.ctx, SOUNDS))
        config = OutboundConfig(port=0, connect_deadline=30.0, command_deadline=30.0, event_deadline=30.0)
        with structlog.testing.capture_logs() as logs:
            async with OutboundServer(handler, config) as server:
                trace = await peer.call(server.port)
        return trace, logs


@pytest.fixture
def esl(ivr_lab: IvrLab) -> EslLab:
    return EslLab(ivr_lab)


def wav(prompt: str, language: str = "en") -> str:
    return f"{SOUNDS}/dncgate/{language}/{prompt}.wav"


def pgd(n: int, prompts: list[str], max_digits: int = 1, language: str = "en") -> str:
    files = wav(prompts[0], language) if len(prompts) == 1 else "file_string://" + "!".join(
        wav(p, language) for p in prompts)
    return (f"execute {PGD} 1 {max_digits} 1 200 # {files} silence_stream://250 dncgate_ivr_{n} [0-9*]+ 200")


async def test_decline_all_over_the_outbound_socket(esl: EslLab) -> None:
    assert await esl.lab.decide() == "allowed_clear"
    trace, logs = await esl.call(FakeIvrSwitch(ivr_reply(), keys=["1", HANGUP]))
    assert trace.shorts()[:5] == [
        "myevents",
        "execute answer",
        pgd(1, ["ivr-welcome", "ivr-menu"]),
        f"execute playback {wav('ivr-saved-decline-all')}",
        pgd(2, ["ivr-menu"]),
    ]
    assert len(trace.shorts()) == 5  # the caller hung up at the second menu: nothing more is sent
    assert await esl.lab.decide() == "category_declined"
    (event,) = await esl.lab.history()
    assert event.action is Action.DECLINE
    assert event.evidence is not None
    assert (event.evidence.channel, event.evidence.source, event.evidence.captured_by) == (Channel.IVR, CALLER, "ivr")
    assert event.evidence.shown == "dncgate/en/ivr-menu keys=1"
    assert event.detail.startswith("ivr esl call 7e27fcf0-")
    assert [e.id for e in await esl.lab.ledger.outbox("acme")] == [event.id]
    assert [e["reason"] for e in logs if e["event"] == "ivr.finished"] == ["caller"]


async def test_categories_over_the_outbound_socket(esl: EslLab) -> None:
    trace, _ = await esl.call(FakeIvrSwitch(ivr_reply(dncgate_language="zh"), keys=["2", "28#", "", "", ""]))
    shorts = trace.shorts()
    assert shorts[2] == pgd(1, ["ivr-welcome", "ivr-menu"], language="zh")
    assert shorts[3].startswith(f"execute {PGD} 1 8 1 200 # file_string://{wav('ivr-categories-intro', 'zh')}!")
    assert shorts[-1] == "hangup NORMAL_CLEARING"  # three timeouts, goodbye, hang-up
    assert shorts[-2] == f"execute playback {wav('ivr-goodbye', 'zh')}"
    (event,) = await esl.lab.history()
    assert event.categories == ("real_estate", "food")
    assert await esl.lab.decide(category="food") == "category_declined"
    assert await esl.lab.decide(category="health") == "allowed_clear"


async def test_digits_read_back_with_uuid_getvar_when_not_in_the_event(esl: EslLab) -> None:
    trace, _ = await esl.call(FakeIvrSwitch(ivr_reply(), keys=["1"], in_event=False))
    assert any(c.line.startswith("api uuid_getvar ") and c.line.endswith(" dncgate_ivr_1") for c in trace.commands)
    assert await esl.lab.history() == []  # the fake says _undef_: nothing pressed, nothing recorded


async def test_withdraw_a_consent_over_the_outbound_socket(esl: EslLab) -> None:
    await esl.lab.grant("bank-1")
    trace, _ = await esl.call(FakeIvrSwitch(ivr_reply(), keys=["3", "1", HANGUP]))
    listing = next(s for s in trace.shorts() if "ivr-consents-intro" in s)
    assert "!".join(wav(p) for p in ("ivr-business", "ivr-digit-1", "ivr-char-b", "ivr-char-a")) in listing
    assert await esl.lab.decide(entity="bank-1") == "consent_revoked"


@pytest.mark.parametrize(("number", "hidden"), [(CALLER, True), ("anonymous", False), ("0000000000", False),
                                                ("", False)])
async def test_unidentified_caller_over_the_outbound_socket(esl: EslLab, number: str, hidden: bool) -> None:
    trace, _ = await esl.call(FakeIvrSwitch(ivr_reply(number, hidden=hidden), keys=["1"]))
    assert trace.shorts() == ["myevents", "execute answer", f"execute playback {wav('ivr-unidentified')}",
                              "hangup NORMAL_CLEARING"]
    assert await esl.lab.history() == []


async def test_check_sessions_are_unchanged(esl: EslLab) -> None:
    reply = with_variables(with_destination(RECORDED, "82015550199"), dncgate_tenant="acme")  # no dncgate_app
    trace, _ = await esl.call(FakeFreeSwitch(reply))
    assert trace.shorts()[0] == "myevents"
    assert trace.shorts()[1].startswith("execute multiset dncgate_verdict=allow")
    assert trace.shorts()[2] == "execute transfer 2015550199 XML dncgate_allowed"


# --- a prompt that blocks (recorded: no media timer, no RTP from the caller) ---------------------

IVR_UUID = "7e27fcf0-df80-4c13-94b2-bd5f27554bdb"  # Unique-ID of RECORDED


async def call_quick(esl: EslLab, peer: FakeFreeSwitch) -> tuple[CallTrace, list[dict[str, Any]]]:
    """The IVR handler alone, with a short prompt deadline (a setting, not a wait); the settle after
    uuid_kill keeps a long one, so a busy machine cannot fire it."""
    config = OutboundConfig(port=0, connect_deadline=30.0, command_deadline=30.0, event_deadline=30.0)
    with structlog.testing.capture_logs() as logs:
        async with OutboundServer(ivr_esl_handler(esl.lab.ctx, SOUNDS, prompt_deadline=0.05, settle_deadline=5.0),
                                  config) as server:
            trace = await peer.call(server.port)
    return trace, logs


async def test_blocked_playback_prompt_is_cut_through_the_api(esl: EslLab) -> None:
    peer = FakeIvrSwitch(ivr_reply("anonymous"), media_timer=False)
    trace, logs = await call_quick(esl, peer)
    assert trace.shorts() == ["myevents", "execute answer", f"execute playback {wav('ivr-unidentified')}",
                              f"api uuid_kill {IVR_UUID} NORMAL_CLEARING"]
    assert trace.queued == []  # no sendmsg hangup left waiting behind the playback
    assert trace.outcome == "uuid_kill NORMAL_CLEARING"
    stuck = next(e for e in logs if e["event"] == "ivr.esl.prompt_stuck")
    assert (stuck["app"], stuck["prompts"], stuck["answer"]) == ("playback", ["ivr-unidentified"], "+OK")


async def test_blocked_question_is_cut_through_the_api(esl: EslLab) -> None:
    peer = FakeIvrSwitch(ivr_reply(), keys=["1"], blocks_on=PGD)
    trace, logs = await call_quick(esl, peer)
    assert trace.shorts()[-2:] == [pgd(1, ["ivr-welcome", "ivr-menu"]), f"api uuid_kill {IVR_UUID} NORMAL_CLEARING"]
    assert trace.outcome == "uuid_kill NORMAL_CLEARING"
    assert next(e for e in logs if e["event"] == "ivr.esl.prompt_stuck")["app"] == PGD
    assert await esl.lab.history() == []  # nothing was pressed, nothing recorded


async def test_the_ivr_hangup_is_sent_once_when_the_call_ends(esl: EslLab) -> None:
    trace, logs = await call_quick(esl, FakeIvrSwitch(ivr_reply("anonymous")))
    assert trace.shorts()[-1] == "hangup NORMAL_CLEARING"
    assert trace.outcome == "hangup NORMAL_CLEARING"
    assert not [e for e in logs if e["event"].startswith("ivr.esl.")]
