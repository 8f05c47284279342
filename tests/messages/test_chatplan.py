"""FreeSWITCH's chatplan path on the inbound event socket: a fake FreeSWITCH answers the auth and
subscription with the real switch's recorded replies and sends MESSAGE events constructed from
mod_sms/sofia source (tests/fixtures/esl_chat/README.md: not recorded); the gate answers each with
``sendevent CUSTOM SMS::SEND_MESSAGE``: the message when allowed, the notice when refused."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from dncgate.backoff import Backoff
from dncgate.esl.inbound import InboundClient, InboundConfig
from dncgate.messages.chatplan import ChatplanDoor, run_chatplan
from dncgate.messages.retry import OptOutRetries
from tests.messages.conftest import CONSENTED, LISTED, MARKETING_PORT, Lab

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED = (FIXTURES / "esl" / "inbound_8021.rx.raw").read_bytes()  # the real switch's replies, in order


def _recorded_reply(text: bytes) -> bytes:
    start = RECORDED.index(text)
    head = RECORDED.rfind(b"Content-Type:", 0, start)
    return RECORDED[head:RECORDED.index(b"\n\n", start) + 2]


def message_event(from_user: str, to_user: str, body: str, *, marked: bool = True) -> bytes:
    """One text/event-plain MESSAGE frame from the constructed fixture (``marked``: by the chatplan)."""
    data = body.encode()
    template = (FIXTURES / "esl_chat" / "message_event.plain").read_bytes()
    if not marked:
        template = template.replace(b"dncgate_check: true\n", b"")
    inner = (template
             .replace(b"@FROM_USER@", urllib.parse.quote(from_user, safe="").encode())
             .replace(b"@TO_USER@", urllib.parse.quote(to_user, safe="").encode())
             .replace(b"@BODY_LENGTH@", str(len(data)).encode()).replace(b"@BODY@", data))
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


@dataclass
class FakeFreeswitch:
    """Inbound event socket: auth, ``event plain MESSAGE``, then the events; records sendevents."""

    events: list[bytes]
    sent: list[bytes] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expect: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._exchange(reader, writer)
        finally:
            self.done.set()
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        assert await reader.readuntil(b"\n\n") == b"auth ClueCon\n\n"
        writer.write(_recorded_reply(b"+OK accepted"))
        assert await reader.readuntil(b"\n\n") == b"event plain MESSAGE\n\n"
        writer.write(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
        for event in self.events:
            writer.write(event)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while len(self.sent) < self.expect:
                head = await reader.readuntil(b"\n\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\n")
                               if line.startswith(b"Content-Length:")), 0)
                self.sent.append(head + (await reader.readexactly(length) if length else b""))
                writer.write(b"Content-Type: command/reply\nReply-Text: +OK 0d6f0e1a-9a8b-4c43-8f0e-5a3c2b1d7e90\n\n")
                await writer.drain()
        self.done.set()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the gate closes


@contextlib.asynccontextmanager
async def chatplan(lab: Lab, events: list[bytes], expect: int,
                   door: ChatplanDoor | None = None) -> AsyncIterator[FakeFreeswitch]:
    fake = FakeFreeswitch(events, expect=expect)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    door = door or ChatplanDoor(lab.service, tenant="acme")
    config = InboundConfig(port=port, events=("MESSAGE",), event_format="plain")
    task = asyncio.create_task(run_chatplan(door, lambda: InboundClient(config), stop, backoff=Backoff()))
    try:
        async with asyncio.timeout(10):
            await fake.done.wait()
        yield fake
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()


def _headers(frame: bytes) -> dict[str, str]:
    head = frame.split(b"\n\n", 1)[0].decode()
    return dict(line.split(": ", 1) for line in head.splitlines()[1:])


async def test_a_listed_recipient_gets_nothing_and_the_sender_the_notice(lab: Lab) -> None:
    async with chatplan(lab, [message_event(MARKETING_PORT, LISTED, "Loans at 3.1%")], expect=1) as fake:
        pass
    [notice] = fake.sent
    assert notice.startswith(b"sendevent CUSTOM\n")
    headers = _headers(notice)
    assert (headers["Event-Subclass"], headers["to"], headers["from"]) == (
        "SMS::SEND_MESSAGE", f"{MARKETING_PORT}@127.0.0.1", f"{LISTED}@127.0.0.1")
    assert notice.endswith(b"Not delivered: the recipient does not accept marketing messages.")
    [record] = await lab.audit_records()
    assert (record.door, record.reason, record.caller_id) == ("sip-message", "national_dnc", MARKETING_PORT)


async def test_a_consented_recipient_gets_the_message_and_a_reply_opts_out(lab: Lab) -> None:
    events = [message_event(MARKETING_PORT, CONSENTED, "Loans at 3.1%"),
              message_event(CONSENTED, MARKETING_PORT, "退订"),
              message_event(MARKETING_PORT, CONSENTED, "Loans at 3.1%")]
    async with chatplan(lab, events, expect=3) as fake:
        pass
    forwarded, reply, notice = fake.sent
    assert (_headers(forwarded)["to"], _headers(forwarded)["dest_proto"]) == (f"{CONSENTED}@127.0.0.1", "sip")
    assert forwarded.endswith(b"Loans at 3.1%")
    assert _headers(reply)["to"] == f"{MARKETING_PORT}@127.0.0.1"
    assert reply.endswith("退订".encode())  # the reply reaches the business
    assert _headers(notice)["to"] == f"{MARKETING_PORT}@127.0.0.1"  # the next one is refused
    assert [r.reason for r in await lab.audit_records()] == ["allowed_consent", "consent_revoked"]


async def test_events_that_are_not_marked_or_not_readable_send_nothing(lab: Lab) -> None:
    unmarked = message_event(MARKETING_PORT, LISTED, "x", marked=False)
    no_recipient = message_event(MARKETING_PORT, "", "x")
    async with chatplan(lab, [unmarked, no_recipient, message_event(MARKETING_PORT, LISTED, "x")], expect=1) as fake:
        pass
    assert len(fake.sent) == 1  # only the last one's notice
    assert len(await lab.audit_records()) == 1


@pytest.mark.parametrize("body", ["", "x" * 5000])
async def test_an_empty_or_oversized_body(lab: Lab, body: str) -> None:
    events = [message_event(MARKETING_PORT, LISTED, body), message_event(MARKETING_PORT, LISTED, "ok")]
    async with chatplan(lab, events, expect=2 if not body else 1) as fake:
        pass
    assert len(fake.sent) == (2 if not body else 1)  # an empty message is still checked; an oversized one is not


async def test_a_stop_the_ledger_cannot_record_is_kept_and_recorded_once_it_can(lab: Lab) -> None:
    locked = sqlite3.connect(lab.ledger.path, isolation_level=None)  # another writer holds the file
    locked.execute("BEGIN IMMEDIATE")
    lab.service.ledger_deadline = 30.0  # the failure is SQLite's own: busy past its busy_timeout, nothing written
    retries = OptOutRetries(lab.service, backoff=Backoff(initial=0.05, maximum=0.2))
    door = ChatplanDoor(lab.service, tenant="acme", retries=retries)
    replied_at = lab.clock.now
    try:
        async with chatplan(lab, [message_event(CONSENTED, MARKETING_PORT, "STOP")], expect=1, door=door) as fake:
            assert retries.pending == 1  # not recorded, not lost
            lab.clock.advance(timedelta(minutes=5))
            locked.rollback()
            async with asyncio.timeout(10):
                await retries.drained.wait()
    finally:
        locked.close()
    [reply] = fake.sent
    assert reply.endswith(b"STOP")  # the reply itself was forwarded to the business
    outcome = await lab.send(MARKETING_PORT, CONSENTED, "Loans at 3.1%")
    assert outcome.check is not None
    assert outcome.check.decision.reason.value == "consent_revoked"
    [revoke] = [e async for e in lab.ledger.history("acme", int(CONSENTED[1:])) if e.action.value == "revoke"]
    assert revoke.evidence.captured_at == replied_at  # when the subscriber replied, not when it was recorded
