"""The SMPP proxy between a real SMPP client (smpplib, as a bulk sender binds) and an SMSC speaking
smpplib's PDUs: refused submits are answered ESME_RPROHIBITED and never reach the SMSC, allowed
ones are relayed unchanged, a subscriber's STOP from the SMSC withdraws consent, bad PDUs are
answered with the status that says what is wrong."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import pytest
import smpplib.client
import smpplib.consts
import smpplib.smpp

from dncgate.messages.service import MessageService
from dncgate.messages.smpp.codec import Command, Status, encode
from dncgate.messages.smpp.proxy import SmppProxy, SmppProxyConfig
from dncgate.sessions import ServerLimits
from tests.messages.conftest import (
    CLEAR,
    CONSENTED,
    LISTED,
    MARKETING_PORT,
    SERVICE_PORT,
    SETTINGS,
    UNKNOWN_PORT,
    Lab,
)
from tests.messages.smsc import Smsc

T = TypeVar("T")
PROHIBITED = 0x101


@dataclass
class Rig:
    lab: Lab
    smsc: Smsc
    proxy: SmppProxy

    async def esme(self, work: Callable[[smpplib.client.Client], T], system_id: str = "bulk-1") -> T:
        """Bind a real SMPP client to the proxy (in a thread: smpplib blocks), run ``work``, unbind."""
        def run() -> T:
            client = smpplib.client.Client("127.0.0.1", self.proxy.port, timeout=10, allow_unknown_opt_params=True)
            client.connect()
            try:
                client.bind_transceiver(system_id=system_id, password="secret")
                result = work(client)
                client.unbind()
                return result
            finally:
                client.disconnect()
        return await asyncio.to_thread(run)

    async def submit(self, destination: str, text: bytes = b"Loans at 3.1%", *, source: str = MARKETING_PORT,
                     dest_ton: int = 0, data_coding: int = 0, system_id: str = "bulk-1") -> Any:
        def work(client: smpplib.client.Client) -> Any:
            client.send_message(source_addr_ton=0, source_addr=source, dest_addr_ton=dest_ton,
                                destination_addr=destination, short_message=text, data_coding=data_coding)
            return client.read_pdu()
        return await self.esme(work, system_id)


# the lab's ports, bound to the ESME bulk-1 (over SMPP a port must name who may send from it)
SMPP_SETTINGS = msgspec.structs.replace(SETTINGS, tenants={"acme": msgspec.structs.replace(
    SETTINGS.tenants["acme"], ports={number: msgspec.structs.replace(port, accounts=("bulk-1",))
                                     for number, port in SETTINGS.tenants["acme"].ports.items()})})


@pytest.fixture
async def rig(lab: Lab) -> AsyncIterator[Rig]:
    smsc = Smsc()
    await smsc.start()
    service = MessageService.of(lab.gate, lab.ledger, SMPP_SETTINGS, clock=lab.clock)
    proxy = SmppProxy(service, SmppProxyConfig(port=0, upstream_port=smsc.port, tenant="acme"))
    await proxy.start()
    try:
        yield Rig(lab, smsc, proxy)
    finally:
        await proxy.close()
        await smsc.close()


async def test_a_listed_recipient_is_refused_prohibited_and_the_smsc_gets_nothing(rig: Rig) -> None:
    resp = await rig.submit(LISTED)
    assert (resp.command, resp.status) == ("submit_sm_resp", PROHIBITED)
    assert rig.smsc.submits() == []
    [record] = await rig.lab.audit_records()
    assert (record.door, record.reason, record.caller_id, record.entity, record.account) == (
        "smpp", "national_dnc", MARKETING_PORT, "bank-1", "bulk-1")


async def test_a_consented_recipient_gets_the_message_relayed_unchanged(rig: Rig) -> None:
    resp = await rig.submit(CONSENTED.lstrip("+"), dest_ton=1)  # international TON: digits without '+'
    assert (resp.command, resp.status, resp.message_id) == ("submit_sm_resp", 0, b"m-1")
    [submit] = rig.smsc.submits()
    assert (submit.destination_addr, submit.short_message) == (CONSENTED.lstrip("+").encode(), b"Loans at 3.1%")
    [record] = await rig.lab.audit_records()
    assert (record.door, record.reason, record.callee) == ("smpp", "allowed_consent", CONSENTED)


async def test_a_national_form_and_ucs2_text_are_read(rig: Rig) -> None:
    resp = await rig.submit("13900139000", "您好".encode("utf-16-be"), data_coding=8)
    assert resp.status == 0
    assert (await rig.lab.audit_records())[0].callee == CLEAR


async def test_an_unknown_sender_port_is_refused_prohibited(rig: Rig) -> None:
    assert (await rig.submit(CLEAR, source=UNKNOWN_PORT)).status == PROHIBITED
    assert (await rig.lab.audit_records())[0].reason == "unknown_sender_port"


async def test_a_service_port_is_never_blocked_without_cause(rig: Rig) -> None:
    # an SMPP submit carries no purpose: a service port's message (from an ESME bound to the port) is
    # a service one, listed or not
    assert (await rig.submit(LISTED, b"Your code is 123456", source=SERVICE_PORT)).status == 0
    assert (await rig.lab.audit_records())[0].reason == "allowed_service"


async def test_a_port_claimed_by_an_esme_not_bound_to_it_is_unknown_and_refused(rig: Rig) -> None:
    resp = await rig.submit(LISTED, b"Sale!", source=SERVICE_PORT, system_id="bulk-2")
    assert (resp.command, resp.status) == ("submit_sm_resp", PROHIBITED)
    assert rig.smsc.submits() == []
    [record] = await rig.lab.audit_records()
    assert (record.reason, record.caller_id, record.account) == ("unknown_sender_port", SERVICE_PORT, "bulk-2")


async def test_a_port_naming_no_accounts_is_no_esmes(rig: Rig) -> None:
    rig.proxy.service = rig.lab.service  # the lab's ports: no accounts
    assert (await rig.submit(CLEAR, b"Your code is 123456", source=SERVICE_PORT)).status == PROHIBITED
    assert rig.smsc.submits() == []
    assert (await rig.lab.audit_records())[0].reason == "unknown_sender_port"


async def test_a_subscribers_stop_from_the_smsc_withdraws_consent_and_is_relayed(rig: Rig) -> None:
    assert (await rig.submit(CONSENTED)).status == 0

    def receive(client: smpplib.client.Client) -> Any:
        pdu = client.read_pdu()
        ack = smpplib.smpp.make_pdu("deliver_sm_resp", client=client, status=smpplib.consts.SMPP_ESME_ROK)
        ack.sequence = pdu.sequence
        client.send_pdu(ack)
        return pdu

    async def stop_after_bind() -> None:
        async with asyncio.timeout(10):
            await rig.smsc.wait_for("bind_transceiver", 2)  # the second ESME session is bound
        await rig.smsc.deliver(CONSENTED, MARKETING_PORT, b"STOP")

    delivered, _ = await asyncio.gather(rig.esme(receive), stop_after_bind())
    assert (delivered.command, delivered.short_message) == ("deliver_sm", b"STOP")
    assert [p.status for p in rig.smsc.received if p.command == "deliver_sm_resp"] == [0]  # the ESME's ack
    assert (await rig.submit(CONSENTED)).status == PROHIBITED
    assert (await rig.lab.audit_records())[-1].reason == "consent_revoked"


def _raw_session(port: int, *pdus: bytes, expect: int = 100) -> list[tuple[int, int, int]]:
    """Send raw PDUs on one connection; the (command_id, status, sequence) of the answers, until
    ``expect`` came or the proxy closed the connection."""
    return [answer[:3] for answer in _raw_answers(port, *pdus, expect=expect)]


def _raw_answers(port: int, *pdus: bytes, expect: int = 100) -> list[tuple[int, int, int, bytes]]:
    """As ``_raw_session``, each answer with its body."""
    answers: list[tuple[int, int, int, bytes]] = []
    data = b""

    def read(sock: socket.socket, until: Callable[[], bool]) -> None:
        nonlocal data
        while not until() and (chunk := sock.recv(65536)):
            data += chunk
            while len(data) >= 16 and len(data) >= struct.unpack_from(">I", data)[0]:
                length, command, status, sequence = struct.unpack_from(">IIII", data)
                answers.append((command, status, sequence, data[16:length]))
                data = data[length:]

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for pdu in pdus:
            sock.sendall(pdu)
            command, sequence = struct.unpack_from(">I", pdu, 4)[0], struct.unpack_from(">I", pdu, 12)[0]
            if command == Command.BIND_TRANSCEIVER:  # as an ESME does: nothing more before the bind's answer
                read(sock, lambda: any(a[2] == sequence for a in answers))  # noqa: B023
        read(sock, lambda: len(answers) >= expect)
    return answers


BIND = encode(Command.BIND_TRANSCEIVER, 1, b"bulk-1\x00secret\x00\x00\x34\x00\x00\x00")


def _submit_multi(sequence: int, *destinations: str, source: str = MARKETING_PORT, lists: tuple[str, ...] = (),
                  text: bytes = b"Loans at 3.1%") -> bytes:
    """A submit_multi (SMPP 3.4 section 4.5.1) to SME addresses (TON 1 for '+...') and distribution lists."""
    dests = b"".join(bytes((1, 1 if d.startswith("+") else 0, 1)) + d.lstrip("+").encode() + b"\x00"
                     for d in destinations) + b"".join(b"\x02" + name.encode() + b"\x00" for name in lists)
    body = (b"\x00" + bytes((0, 1)) + source.encode() + b"\x00" + bytes((len(destinations) + len(lists),)) + dests
            + b"\x00\x00\x00" + b"\x00\x00" + b"\x00\x00" + b"\x00" + b"\x00" + bytes((len(text),)) + text)
    return encode(Command.SUBMIT_MULTI, sequence, body)


def _unsuccessful(body: bytes) -> tuple[bytes, list[tuple[str, int]]]:
    """(message_id, [(destination_addr, error_status_code)]) of a submit_multi_resp body."""
    message_id, rest = body.split(b"\x00", 1)
    count, rest = rest[0], rest[1:]
    entries = []
    for _ in range(count):
        address, rest = rest[2:].split(b"\x00", 1)
        entries.append((address.decode(), struct.unpack(">I", rest[:4])[0]))
        rest = rest[4:]
    return message_id, entries


async def test_a_submit_multi_goes_on_to_the_allowed_recipients_only(rig: Rig) -> None:
    answers = await asyncio.to_thread(_raw_answers, rig.proxy.port or 0, BIND,
                                      _submit_multi(2, LISTED, CLEAR, CONSENTED), expect=2)
    [(_, status, _, body)] = [a for a in answers if a[0] == Command.SUBMIT_MULTI_RESP]
    assert status == 0
    assert _unsuccessful(body) == (b"m-1", [(LISTED.lstrip("+"), PROHIBITED)])  # the SMSC's id, the gate's refusal
    [relayed] = rig.smsc.multis
    assert LISTED.lstrip("+").encode() not in relayed
    assert CLEAR.lstrip("+").encode() in relayed
    assert CONSENTED.lstrip("+").encode() in relayed
    records = await rig.lab.audit_records()
    assert sorted((r.callee, r.reason) for r in records) == sorted(
        [(LISTED, "national_dnc"), (CLEAR, "allowed_clear"), (CONSENTED, "allowed_consent")])
    assert {r.door for r in records} == {"smpp"}


async def test_a_submit_multi_to_listed_recipients_only_never_reaches_the_smsc(rig: Rig) -> None:
    answers = await asyncio.to_thread(_raw_answers, rig.proxy.port or 0, BIND, _submit_multi(2, LISTED), expect=2)
    [(_, status, _, body)] = [a for a in answers if a[0] == Command.SUBMIT_MULTI_RESP]
    assert status == PROHIBITED
    assert _unsuccessful(body) == (b"", [(LISTED.lstrip("+"), PROHIBITED)])
    assert rig.smsc.multis == []
    assert [r.reason for r in await rig.lab.audit_records()] == ["national_dnc"]


async def test_a_submit_multi_to_a_distribution_list_is_refused(rig: Rig) -> None:
    answers = await asyncio.to_thread(_raw_session, rig.proxy.port or 0, BIND,
                                      _submit_multi(2, CLEAR, lists=("customers",)), expect=2)
    assert (Command.SUBMIT_MULTI_RESP, PROHIBITED, 2) in answers
    assert rig.smsc.multis == []


@pytest.mark.parametrize("command", [0x00000007, 0x00000111])  # replace_sm, broadcast_sm
async def test_replace_and_broadcast_are_refused_never_relayed(rig: Rig, command: int) -> None:
    pdu = encode(command, 2, b"\x00" * 40)
    answers = await asyncio.to_thread(_raw_session, rig.proxy.port or 0, BIND, pdu, expect=2)
    assert (command | 0x80000000, PROHIBITED, 2) in answers
    assert [raw for raw in rig.smsc.raw if struct.unpack_from(">I", raw, 4)[0] == command] == []


@pytest.mark.parametrize("command", [0x00000099, 0x00000102, 0x80000004])  # unknown, alert_notification, a resp
async def test_an_unexpected_command_is_nacked_never_relayed(rig: Rig, command: int) -> None:
    pdu = encode(command, 2, b"\x00" * 8)
    answers = await asyncio.to_thread(_raw_session, rig.proxy.port or 0, BIND, pdu, expect=2)
    assert (Command.GENERIC_NACK, Status.RINVCMDID, 2) in answers
    assert [raw for raw in rig.smsc.raw if struct.unpack_from(">I", raw, 4)[0] == command] == []


async def test_a_truncated_submit_is_answered_invalid_length_and_the_session_goes_on(rig: Rig) -> None:
    truncated = encode(Command.SUBMIT_SM, 7, b"\x00\x00\x00" + MARKETING_PORT.encode())  # no terminator
    bind = encode(Command.BIND_TRANSCEIVER, 1, b"bulk-1\x00secret\x00\x00\x34\x00\x00\x00")
    enquire = encode(Command.ENQUIRE_LINK, 8)
    answers = await asyncio.to_thread(_raw_session, rig.proxy.port or 0, bind, truncated, enquire, expect=3)
    assert sorted(answers, key=lambda answer: answer[2]) == [  # the gate's answer may overtake the SMSC's
        (Command.BIND_TRANSCEIVER | 0x80000000, 0, 1),  # the SMSC's
        (Command.SUBMIT_SM_RESP, Status.RINVSRCADR, 7),  # the gate's: source_addr is not terminated
        (Command.ENQUIRE_LINK | 0x80000000, 0, 8),  # the SMSC's: the session went on
    ]
    assert rig.smsc.submits() == []


@pytest.mark.parametrize("length", [8, 15, 1 << 24])
async def test_a_pdu_length_out_of_bounds_ends_the_session_with_a_nack(rig: Rig, length: int) -> None:
    bad = struct.pack(">IIII", length, Command.SUBMIT_SM, 0, 3)
    answers = await asyncio.to_thread(_raw_session, rig.proxy.port or 0, bad)
    assert answers == [(Command.GENERIC_NACK, Status.RINVCMDLEN, 0)]


async def test_without_the_smsc_the_esme_is_disconnected(lab: Lab) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # bound, not listening: connecting is refused
        proxy = SmppProxy(lab.service, SmppProxyConfig(port=0, upstream_port=closed_port, tenant="acme",
                                                       connect_deadline=2.0))
        await proxy.start()
        try:
            answers = await asyncio.to_thread(_raw_session, proxy.port or 0, encode(Command.ENQUIRE_LINK, 1))
        finally:
            await proxy.close()
    assert answers == []


async def _proxy(lab: Lab, smsc: Smsc, **options: Any) -> SmppProxy:
    proxy = SmppProxy(MessageService.of(lab.gate, lab.ledger, SMPP_SETTINGS, clock=lab.clock),
                      SmppProxyConfig(port=0, upstream_port=smsc.port, tenant="acme", **options))
    await proxy.start()
    return proxy


def _closed_without_answer(port: int, *pdus: bytes) -> bool:
    """Whether the proxy closes this connection having answered nothing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for pdu in pdus:
            with contextlib.suppress(OSError):
                sock.sendall(pdu)
        try:
            return sock.recv(65536) == b""
        except ConnectionResetError:
            return True


async def test_a_peer_outside_allow_is_closed_and_counted(lab: Lab) -> None:
    smsc = Smsc()
    await smsc.start()
    proxy = await _proxy(lab, smsc, limits=ServerLimits(allow=("192.0.2.0/24",)))
    try:
        assert await asyncio.to_thread(_closed_without_answer, proxy.port or 0, BIND)
        assert proxy.server is not None
        assert proxy.server.refused_by["not_allowed"] == 1
    finally:
        await proxy.close()
        await smsc.close()
    assert smsc.received == []


async def test_one_peer_holds_at_most_its_share_of_sessions(lab: Lab) -> None:
    smsc = Smsc()
    await smsc.start()
    proxy = await _proxy(lab, smsc, limits=ServerLimits(max_sessions=8, max_sessions_per_peer=1))
    try:
        def two_sessions() -> tuple[int, bool]:
            with socket.create_connection(("127.0.0.1", proxy.port or 0), timeout=10) as first:
                first.sendall(BIND)
                answered = struct.unpack_from(">I", first.recv(65536), 4)[0]
                return answered, _closed_without_answer(proxy.port or 0, BIND)  # while the first is open

        assert await asyncio.to_thread(two_sessions) == (Command.BIND_TRANSCEIVER | 0x80000000, True)
        assert proxy.server is not None
        assert proxy.server.refused_by["max_sessions_per_peer"] == 1
    finally:
        await proxy.close()
        await smsc.close()


async def test_a_silent_esme_is_closed_after_the_idle_deadline(lab: Lab) -> None:
    smsc = Smsc()
    await smsc.start()
    proxy = await _proxy(lab, smsc, idle_deadline=0.2)
    try:
        answers = await asyncio.to_thread(_raw_session, proxy.port or 0, BIND)  # then nothing: until closed
    finally:
        await proxy.close()  # waits for the session's end to be counted
        await smsc.close()
    assert answers == [(Command.BIND_TRANSCEIVER | 0x80000000, 0, 1)]
    assert proxy.server is not None
    assert proxy.server.outcomes["idle"] == 1
