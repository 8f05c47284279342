"""The SMPP codec on arbitrary bytes: whole PDUs or ``SmppDecodeError`` (with a status to answer),
never another exception, never a read past the PDU."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.messages.smpp.codec import (
    MAX_PDU_BYTES,
    Command,
    Pdu,
    PduReader,
    SmppDecodeError,
    Status,
    encode,
    merge_multi_response,
    response,
    short_message,
    submit_multi,
)


def _submit(source: bytes, destination: bytes, message: bytes, *, dest_ton: int = 0, esm_class: int = 0,
            data_coding: int = 0, tlvs: bytes = b"") -> Pdu:
    body = (b"\x00" + bytes([0, 0]) + source + b"\x00" + bytes([dest_ton, 1]) + destination + b"\x00"
            + bytes([esm_class, 0, 0]) + b"\x00" + b"\x00" + bytes([0, 0, data_coding, 0, len(message)]) + message
            + tlvs)
    return Pdu(Command.SUBMIT_SM, 0, 1, body)


def test_a_submit_is_read() -> None:
    sm = short_message(_submit(b"106900001234", b"8613800138000", b"Hello", dest_ton=1))
    assert (sm.source, sm.destination, sm.text, sm.is_receipt) == ("106900001234", "+8613800138000", "Hello", False)


def test_message_payload_ucs2_and_a_user_data_header() -> None:
    text = "退订".encode("utf-16-be")
    payload = struct.pack(">HH", 0x0424, len(text)) + text
    assert short_message(_submit(b"1", b"2", b"", data_coding=8, tlvs=payload)).text == "退订"
    udh = bytes([5, 0, 3, 7, 2, 1])  # a concatenation header: 5 octets after its length
    assert short_message(_submit(b"1", b"2", udh + b"STOP", esm_class=0x40)).text == "STOP"


def test_a_delivery_receipt_is_not_a_message() -> None:
    assert short_message(_submit(b"1", b"2", b"id:1 stat:DELIVRD", esm_class=0x04)).is_receipt


def test_pdus_are_framed_across_reads() -> None:
    reader = PduReader()
    raw = encode(Command.ENQUIRE_LINK, 5) + encode(Command.SUBMIT_SM, 6, b"xyz")
    assert reader.feed(raw[:20]) == [Pdu(Command.ENQUIRE_LINK, 0, 5, b"")]
    assert reader.feed(raw[20:]) == [Pdu(Command.SUBMIT_SM, 0, 6, b"xyz")]
    assert reader.pending == 0


def test_a_refusal_answers_the_request() -> None:
    request = Pdu(Command.SUBMIT_SM, 0, 42, b"")
    assert response(request, Status.RPROHIBITED) == encode(Command.SUBMIT_SM_RESP, 42, b"\x00", Status.RPROHIBITED)
    assert response(Pdu(Command.SUBMIT_SM_RESP, 0, 9, b""), Status.RSYSERR)[:8] == struct.pack(
        ">II", 16, Command.GENERIC_NACK)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_body_decodes_or_says_why(body: bytes) -> None:
    for command in (Command.SUBMIT_SM, Command.DELIVER_SM, Command.DATA_SM):
        status: Status | None = None
        try:
            sm = short_message(Pdu(command, 0, 1, body))
        except SmppDecodeError as exc:
            status = exc.status
        else:
            assert len(sm.payload) <= len(body)
            assert isinstance(sm.text, str)
        assert status is None or status in Status


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_any_stream_frames_or_is_refused(chunks: list[bytes]) -> None:
    reader = PduReader()
    status: Status | None = None
    try:
        for chunk in chunks:
            for pdu in reader.feed(chunk):
                assert 16 + len(pdu.body) <= MAX_PDU_BYTES
    except SmppDecodeError as exc:
        status = exc.status
    assert status in (None, Status.RINVCMDLEN)
    assert reader.pending <= sum(len(c) for c in chunks)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_submit_multi_body_decodes_or_says_why(body: bytes) -> None:
    status: Status | None = None
    try:
        multi = submit_multi(Pdu(Command.SUBMIT_MULTI, 0, 1, body))
    except SmppDecodeError as exc:
        status = exc.status
    else:
        assert 1 <= len(multi.destinations) + len(multi.distribution_lists) <= 255
        assert multi.body_with(list(multi.destinations)) == body or multi.distribution_lists
    assert status is None or status in Status


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_submit_multi_resp_merges_or_says_why(body: bytes) -> None:
    status: Status | None = None
    try:
        merged = merge_multi_response(body, [b"\x01\x01123\x00\x00\x00\x01\x01"])
    except SmppDecodeError as exc:
        status = exc.status
    else:
        assert merged.endswith(b"\x01\x01123\x00\x00\x00\x01\x01")
    assert status is None or status in Status
