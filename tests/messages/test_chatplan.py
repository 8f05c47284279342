"""FreeSWITCH's chatplan path (mod_sms -> inbound event socket -> the gate -> ``sendevent CUSTOM
SMS::SEND_MESSAGE``) on recorded transcripts: a peer plays what a real FreeSWITCH 1.11.1 sent (its
replies, the MESSAGE events sofia and mod_sms made from SIPp's SIP MESSAGEs) to the gate's chatplan
client, and the gate must send what the real gate sent to that switch (``*.tx.raw``).
``tests/fixtures/esl_chat/README.md`` says how they were recorded and what they do not prove.

The two gate sessions differ only in the chatplan's last action (``stop``, ``final``): FreeSWITCH's
copy of each message then has or lacks ``final_delivery``; the gate must answer both alike."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from structlog.testing import capture_logs

from dncgate.backoff import Backoff
from dncgate.messages.chatplan import ChatplanDoor
from dncgate.messages.retry import OptOutRetries
from tests.messages.conftest import CONSENTED, LISTED, MARKETING_PORT, Lab
from tests.messages.recorded_chat import CHAT, Recording, event_of, replayed

GATE_SESSIONS = ["gate_chatplan_stop", "gate_chatplan_final"]
FINAL = Recording.load("gate_chatplan_final")
LISTED_, CONSENTED_, STOP_, REFUSED_, OVERSIZED_ = FINAL.messages()  # the five SIP MESSAGEs, in order
DIALPLAN = Path(__file__).resolve().parents[2] / "dialplan" / "freeswitch"
CORE_UUID = "d98aba52-d0df-4913-8858-e8747f0f847f"  # that FreeSWITCH's run


def one_message(recording: Recording, events: list[bytes], *, answered: bool = True) -> list[bytes]:
    """A session of the recording's handshake, one message's events, the switch's reply to the
    gate's sendevent (``answered``), and its goodbye."""
    return [*recording.handshake(), *events, *([recording.sendevent_reply()] if answered else []),
            recording.goodbye()]


def headers(command: bytes) -> dict[str, str]:
    head = command.split(b"\n\n", 1)[0].decode()
    return dict(line.split(": ", 1) for line in head.splitlines()[1:])


@pytest.mark.parametrize("name", GATE_SESSIONS)
async def test_the_gate_sends_what_it_sent_to_the_real_switch(lab: Lab, name: str) -> None:
    """The whole recorded session: ten MESSAGE events (each message and the core's after-delivery
    copy), four sendevents, three checks: each copy is ignored, the oversized one is not checked."""
    recording = Recording.load(name)
    async with replayed(lab, list(recording.rx)) as peer:
        pass
    assert peer.sent == list(recording.tx)
    assert [r.reason for r in await lab.audit_records()] == ["national_dnc", "allowed_consent", "consent_revoked"]


async def test_a_listed_recipient_gets_nothing_and_the_sender_the_notice(lab: Lab) -> None:
    async with replayed(lab, one_message(FINAL, LISTED_)) as peer:
        pass
    assert peer.sent == [*FINAL.tx[:2], FINAL.tx[2]]
    notice = headers(peer.sent[2])
    assert (notice["Event-Subclass"], notice["to"], notice["from"]) == (
        "SMS::SEND_MESSAGE", f"{MARKETING_PORT}@127.0.0.1", f"{LISTED[3:]}@127.0.0.1")
    assert peer.sent[2].endswith(b"\n\nNot delivered: the recipient does not accept marketing messages.")
    [record] = await lab.audit_records()
    assert (record.door, record.reason, record.caller_id, record.callee) == (
        "sip-message", "national_dnc", MARKETING_PORT, LISTED)


async def test_a_consented_recipient_gets_the_message(lab: Lab) -> None:
    async with replayed(lab, one_message(FINAL, CONSENTED_)) as peer:
        pass
    assert peer.sent == [*FINAL.tx[:2], FINAL.tx[3]]
    delivery = headers(peer.sent[2])
    assert (delivery["to"], delivery["from"], delivery["dest_proto"], delivery["skip_global_process"]) == (
        f"{CONSENTED[3:]}@127.0.0.1", f"{MARKETING_PORT}@127.0.0.1", "sip", "true")
    assert peer.sent[2].endswith(b"\n\nLoans at 3.1%\r\n")  # the SIP body as sofia passed it, CRLF included
    assert [r.reason for r in await lab.audit_records()] == ["allowed_consent"]


async def test_a_stop_reply_is_recorded_as_a_withdrawal_and_forwarded(lab: Lab) -> None:
    replied_at = lab.clock.now
    async with replayed(lab, one_message(FINAL, STOP_)) as peer:
        pass
    assert peer.sent == [*FINAL.tx[:2], FINAL.tx[4]]
    assert peer.sent[2].endswith("\n\n退订\r\n".encode())  # the reply reaches the business
    [revoke] = [e async for e in lab.ledger.history("acme", int(CONSENTED[1:])) if e.action.value == "revoke"]
    assert revoke.evidence is not None
    assert (revoke.entity, revoke.evidence.captured_at, revoke.evidence.shown) == ("bank-1", replied_at, "退订\r\n")
    assert revoke.detail == f"opt-out reply to {MARKETING_PORT}, message {CORE_UUID}/535"  # fire's Event-Sequence
    outcome = await lab.send(MARKETING_PORT, CONSENTED, "Loans at 3.1%")
    assert outcome.check is not None
    assert outcome.check.decision.reason.value == "consent_revoked"


@pytest.mark.parametrize("copies", [False, True], ids=["fire", "fire-and-copy"])
async def test_the_cores_after_delivery_copy_is_not_a_second_message(lab: Lab, copies: bool) -> None:
    """The copy carries every header of the fire, the mark included: answered, it would double
    each audit record and delivery (as it did before d2c24eb)."""
    events = LISTED_ if copies else LISTED_[:1]
    async with replayed(lab, one_message(FINAL, events)) as peer:
        pass
    assert peer.sent == [*FINAL.tx[:2], FINAL.tx[2]]
    assert len(await lab.audit_records()) == 1


async def test_an_oversized_message_is_refused_with_a_clear_error_and_sends_nothing(lab: Lab) -> None:
    with capture_logs() as logs:
        async with replayed(lab, one_message(FINAL, OVERSIZED_, answered=False)) as peer:
            pass
    assert peer.sent == list(FINAL.tx[:2])
    [bad] = [entry for entry in logs if entry["event"] == "messages.chatplan.bad_message"]
    assert (bad["error"], bad["recipient"]) == ("body: 5002 characters, at most 4096", "13700137000@127.0.0.1")
    assert await lab.audit_records() == []


async def test_a_scripted_session_long_oversized_and_empty_bodies(lab: Lab) -> None:
    """``inbound_chat_plain``: six messages a scripted client took from the real switch (1200
    characters, 5000, an empty body among them). Replayed to the gate, each is answered as the gate
    answered the same sender and recipient in its own session; the oversized one is not, and the
    empty one after it still is (nothing lost). The switch's reply to the client's one sendevent
    answers each of the gate's (its DELIVERY_REPORT event is left out: the gate does not subscribe)."""
    scripted = Recording.load("inbound_chat_plain")
    script = [*scripted.handshake(), *(f for events in scripted.messages() for f in events),
              *[scripted.sendevent_reply()] * 5, scripted.goodbye()]
    async with replayed(lab, script) as peer:
        pass
    notice_to_port, delivery, reply, notice_after_stop = FINAL.tx[2:6]
    assert peer.sent == [*FINAL.tx[:2], notice_to_port, delivery, reply, notice_after_stop, notice_to_port]
    assert [r.reason for r in await lab.audit_records()] == [
        "national_dnc", "allowed_consent", "consent_revoked", "national_dnc"]


async def test_a_json_event_session(lab: Lab) -> None:
    """``inbound_chat_json``: the real switch's text/event-json MESSAGE events (``dncgate serve``
    subscribes plain; the client reads both). A STOP word in a message from the port is no opt-out."""
    scripted = Recording.load("inbound_chat_json")
    [events] = scripted.messages()
    script = [*scripted.handshake(), *events, FINAL.sendevent_reply(), scripted.goodbye()]
    async with replayed(lab, script, event_format="json") as peer:
        pass
    body = "退订 Loans at 3.1%\r\n".encode()
    delivery = FINAL.tx[3].replace(b"Content-Length: 15\n\nLoans at 3.1%\r\n", b"Content-Length: %d\n\n" % len(body))
    assert peer.sent == [*scripted.tx[:2], delivery + body]
    assert [e.action.value async for e in lab.ledger.history("acme", int(CONSENTED[1:]))] == ["grant"]


async def test_a_garbled_event_ends_the_connection_with_a_clear_error_and_loses_nothing_before_or_after(
        lab: Lab) -> None:
    """Constructed from a recorded frame (no switch sends this): the consented message's fire with
    a header line broken. The message before it is answered; the connection fails with the
    decoder's error (logged, no traceback); the gate reconnects and answers what comes next. The
    garbled one is not delivered (with ``final``, FreeSWITCH does not deliver it either)."""
    garbled = CONSENTED_[0].replace(b"\nto_user: ", b"\nto_user  ", 1)  # same length, no colon
    first = [*FINAL.handshake(), *LISTED_, FINAL.sendevent_reply(), garbled]
    with capture_logs() as logs:
        async with replayed(lab, first, one_message(FINAL, STOP_)) as peer:
            pass
    assert peer.sent == [*FINAL.tx[:2], FINAL.tx[2], *FINAL.tx[:2], FINAL.tx[4]]
    [lost] = [entry for entry in logs if entry["event"] == "messages.chatplan.connection_lost"]
    assert "not a header line" in lost["error"]
    assert "exc_info" not in lost
    assert [r.reason for r in await lab.audit_records()] == ["national_dnc"]


# Cases no recording shows (the shipped chatplan marks every message, sofia always sets to_user,
# and the ledger was writable): recorded frames edited, each named for what was changed.

def without(frame: bytes, *names: bytes) -> bytes:
    """A recorded text/event-plain frame without the named event headers (Content-Length fixed)."""
    inner = frame.split(b"\n\n", 1)[1]
    kept = b"".join(line for line in inner.splitlines(keepends=True) if line.split(b": ", 1)[0] not in names)
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(kept) + kept


async def test_constructed_unmarked_or_unaddressed_messages_send_nothing(lab: Lab) -> None:
    unmarked = without(LISTED_[0], b"dncgate_check")  # a context the chatplan does not mark
    unaddressed = without(LISTED_[0], b"to", b"to_user")
    with capture_logs() as logs:
        async with replayed(lab, one_message(FINAL, [unmarked, unaddressed, *LISTED_])) as peer:
            pass
    assert peer.sent == [*FINAL.tx[:2], FINAL.tx[2]]  # only the marked, addressed one's notice
    [bad] = [entry for entry in logs if entry["event"] == "messages.chatplan.bad_message"]
    assert bad["error"].startswith("recipient: required")
    assert len(await lab.audit_records()) == 1


async def test_constructed_a_stop_the_ledger_cannot_record_is_kept_and_recorded_once_it_can(lab: Lab) -> None:
    """The recorded STOP reply while another writer holds the ledger's SQLite file."""
    locked = sqlite3.connect(lab.ledger.path, isolation_level=None)
    locked.execute("BEGIN IMMEDIATE")
    lab.service.ledger_deadline = 30.0  # the failure is SQLite's own: busy past its busy_timeout, nothing written
    retries = OptOutRetries(lab.service, backoff=Backoff(initial=0.05, maximum=0.2))
    door = ChatplanDoor(lab.service, tenant="acme", retries=retries)
    replied_at = lab.clock.now
    try:
        async with replayed(lab, one_message(FINAL, STOP_), door=door) as peer:
            assert retries.pending == 1  # not recorded, not lost
            lab.clock.advance(timedelta(minutes=5))
            locked.rollback()
            async with asyncio.timeout(10):
                await retries.drained.wait()
    finally:
        locked.close()
    assert peer.sent == [*FINAL.tx[:2], FINAL.tx[4]]  # the reply itself was forwarded to the business
    outcome = await lab.send(MARKETING_PORT, CONSENTED, "Loans at 3.1%")
    assert outcome.check is not None
    assert outcome.check.decision.reason.value == "consent_revoked"
    [revoke] = [e async for e in lab.ledger.history("acme", int(CONSENTED[1:])) if e.action.value == "revoke"]
    assert revoke.evidence is not None
    assert revoke.evidence.captured_at == replied_at  # when the subscriber replied, not when it was recorded


# What SIPp's UAS (registered for the three numbers) received from the recorded switch.

def delivered(name: str) -> list[tuple[str, str, bytes]]:
    """(recipient, sender, body) of each SIP MESSAGE FreeSWITCH sent to the UAS in a recorded run."""
    out = []
    for block in (CHAT / f"{name}.uas_sip.log").read_bytes().split(b"\nMESSAGE sip:")[1:]:
        head, body = block.split(b"\r\n\r\n", 1)
        sender = re.search(rb"\r\nFrom: [^<]*<sip:([^@]+)@", head)
        length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
        assert sender, head
        assert length, head
        out.append((head.split(b"@", 1)[0].decode(), sender.group(1).decode(), body[:int(length.group(1))]))
    return out


def sent_by_the_gate(recording: Recording) -> list[tuple[str, str, bytes]]:
    return [(headers(c)["to"].split("@")[0], headers(c)["from"].split("@")[0], c.split(b"\n\n", 1)[1])
            for c in recording.tx[2:]]


def test_recorded_with_final_the_switch_delivered_only_what_the_gate_sent() -> None:
    assert delivered("gate_chatplan_final") == sent_by_the_gate(FINAL)


def test_recorded_with_stop_the_switch_also_delivered_every_original_itself() -> None:
    """The chatplan's ``stop`` does not stop the core's own delivery (no ``final_delivery``): the
    listed recipient got the marketing message the gate refused."""
    originals = [(event_of(fire).get("to_user"), event_of(fire).get("from_user"), (event_of(fire).body or "").encode())
                 for fire, _copy in FINAL.messages()]
    received = delivered("gate_chatplan_stop")
    assert sorted(received) == sorted(sent_by_the_gate(Recording.load("gate_chatplan_stop")) + originals)
    assert (LISTED[3:], MARKETING_PORT, b"Loans at 3.1%\r\n") in received


def test_the_shipped_chatplan_ends_every_extension_with_final() -> None:
    """The sample must end with ``final`` (the run recorded above: nothing but the gate's messages
    delivered), never ``stop`` (the switch delivered the refused originals too)."""
    chatplan = ElementTree.parse(DIALPLAN / "dncgate_chatplan.xml").getroot()  # noqa: S314 (our own file)
    extensions = chatplan.findall("./context/extension")
    assert extensions
    for extension in extensions:
        for condition in extension.findall("condition"):
            apps = [action.get("application") for action in condition.findall("action")]
            assert "stop" not in apps
            assert not apps or apps[-1] == "final", f"{extension.get('name')}: {apps}"
