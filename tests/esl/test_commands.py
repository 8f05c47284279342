"""Command encoders reproduce, byte for byte, what a working client sent."""

from __future__ import annotations

import uuid

import pytest
from esl_helpers import fixture_bytes

from dncgate.esl import commands as c
from dncgate.esl.errors import CommandEncodingError
from dncgate.esl.outbound import random_uuid


def test_outbound_reject_dialogue_bytes() -> None:
    sent = b"".join(
        [
            c.connect(),
            c.myevents(),
            c.linger(),
            c.api("uuid_getvar 51489bd7-f8d6-4b06-a0ac-50b6ef133f4b sip_req_user"),
            c.sendmsg_execute("pre_answer", event_uuid="0b51e1cf-5eed-43b8-b762-7a3d4c21026f"),
            c.sendmsg_execute(
                "playback",
                "/srv/lab-fs/sounds/dnc_announcement.wav",
                event_uuid="08b67079-1dd6-452e-af98-731df64b5f2e",
            ),
            c.sendmsg_hangup("CALL_REJECTED"),
        ]
    )
    assert sent == fixture_bytes("outbound_1_5550001.tx.raw")


def test_outbound_linger_n_tone_stream_and_unwanted() -> None:
    assert c.linger(5) == b"linger 5\n\n"
    tone = "tone_stream://%(400,200,913.8);%(400,200,1370.6);%(600,200,1776.7)"
    sent = c.sendmsg_execute("playback", tone, event_uuid="30392d8a-97e5-4164-bab2-69fcca5fa08f")
    assert sent in fixture_bytes("outbound_2_5550002.tx.raw")
    assert c.sendmsg_hangup("UNWANTED") in fixture_bytes("outbound_2_5550002.tx.raw")


def test_allowed_dialogues_bytes() -> None:
    assert c.connect() + c.myevents("json") + c.resume() + c.exit_() == fixture_bytes("outbound_4_5551000.tx.raw")
    transfer = c.sendmsg_execute(
        "transfer", "dnc_ok_5551003 XML public", event_uuid="bd77de45-ca74-451d-b24c-dd2888164abc"
    )
    assert c.connect() + c.myevents() + transfer == fixture_bytes("outbound_1_85551003.tx.raw")


def test_inbound_dialogue_bytes() -> None:
    originate = (
        "originate {origination_uuid=e2d51d18-227a-4ad4-8d2e-ca67a6320381,"
        "origination_caller_id_number=2125550100,origination_caller_id_name=esl-inbound}"
        "sofia/gateway/uas/5551002 &playback(tone_stream://%(1500,0,440))"
    )
    sent = (
        c.auth("ClueCon")
        + c.event("json", ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"])
        + c.event("json", ["BACKGROUND_JOB"])
        + c.bgapi(originate, job_uuid="e3bbfe23-0303-46ed-ae93-5901d0a8e160")
        + c.exit_()
    )
    assert sent == fixture_bytes("inbound_8021.tx.raw")


def test_other_encoders() -> None:
    assert c.sendmsg_hangup("NORMAL_CLEARING", uuid="abc-1") == (
        b"sendmsg abc-1\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n"
    )
    assert c.sendmsg_execute("answer", lock=False) == b"sendmsg\ncall-command: execute\nexecute-app-name: answer\n\n"
    assert c.myevents("json", uuid="u-1") == b"myevents u-1 json\n\n"
    assert c.bgapi("status") == b"bgapi status\n\n"
    assert c.nolinger() == b"nolinger\n\n"
    assert c.noevents() == b"noevents\n\n"


@pytest.mark.parametrize(
    "build",
    [
        lambda: c.api("status\n\nexit"),
        lambda: c.auth("pw\r\nx"),
        lambda: c.auth(""),
        lambda: c.sendmsg_execute("playback", "a\nb"),
        lambda: c.sendmsg_execute("play back"),
        lambda: c.sendmsg_hangup("CALL_REJECTED\nhangup-cause: X"),
        lambda: c.sendmsg_hangup("call_rejected"),
        lambda: c.event("json", []),
        lambda: c.event("json", ["CHANNEL_CREATE\n"]),
        lambda: c.linger(-1),
        lambda: c.bgapi("status", job_uuid="x\ny"),
    ],
)
def test_injection_and_nonsense_are_refused(build: object) -> None:
    assert callable(build)
    with pytest.raises(CommandEncodingError):
        build()


def test_the_event_uuids_are_random_version_4_uuids_spelled_as_uuid4_spells_them() -> None:
    seen = {random_uuid() for _ in range(2000)}
    assert len(seen) == 2000
    for text in seen:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    assert {text[19] for text in seen} == set("89ab")  # every variant digit occurs
