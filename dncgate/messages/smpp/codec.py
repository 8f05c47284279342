"""SMPP 3.4 on the wire, sans I/O: PDU framing, the header, and the short-message PDUs the gate reads.

The proxy relays every PDU as it came (bytes unchanged); it decodes only what it decides on:
``submit_sm``, ``data_sm`` and ``deliver_sm`` (addresses, esm_class, data_coding, the text), and
``bind_*`` (the ESME's system_id). Every read is bounded: a PDU is 16 bytes to
``MAX_PDU_BYTES``; C-strings have the specification's maximum lengths; a field that runs past the
PDU's end, an unterminated C-string or a bad TLV raises ``SmppDecodeError`` with the command
status to answer (SMPP 3.4 section 5.1.3, and 5.0's ESME_RPROHIBITED).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from dncgate.errors import RemoteProtocolError

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number
MAX_PDU_BYTES = 70_000  # a 64 KiB message_payload and the rest of a data_sm
RESPONSE_BIT = 0x80000000


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_TRANSMITTER = 0x00000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    BIND_TRANSCEIVER = 0x00000009
    ENQUIRE_LINK = 0x00000015
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class Status(IntEnum):
    ROK = 0x00000000
    RINVMSGLEN = 0x00000001  # message length is invalid
    RINVCMDLEN = 0x00000002  # command length is invalid
    RSYSERR = 0x00000008
    RINVSRCADR = 0x0000000A
    RINVDSTADR = 0x0000000B
    RINVPARLEN = 0x000000C2  # optional parameter length is invalid
    RX_T_APPN = 0x00000064  # temporary application error: the peer may retry
    RPROHIBITED = 0x00000101  # SMPP 5.0: the ESME is prohibited from this operation (the gate refused)


BINDS = frozenset({Command.BIND_RECEIVER, Command.BIND_TRANSMITTER, Command.BIND_TRANSCEIVER})
SHORT_MESSAGES = frozenset({Command.SUBMIT_SM, Command.DELIVER_SM, Command.DATA_SM})
_MESSAGE_PAYLOAD = 0x0424
_UDHI = 0x40  # esm_class: the short message starts with a user data header
_RECEIPT_TYPES = 0x3C  # esm_class bits 2-5: a delivery receipt or an acknowledgement, not a message


class SmppDecodeError(RemoteProtocolError):
    """The peer sent a PDU that cannot be read; ``status`` is what to answer it."""

    def __init__(self, message: str, status: Status) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes

    @property
    def raw(self) -> bytes:
        return encode(self.command_id, self.sequence, self.body, self.status)


def encode(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(HEADER.size + len(body), command_id, status, sequence) + body


def response(request: Pdu, status: Status, body: bytes | None = None) -> bytes:
    """The response to ``request`` (a ``*_resp`` with ``status``; ``generic_nack`` for a response
    or an unknown command). A submit_sm_resp or data_sm_resp carries an empty message_id."""
    if request.command_id & RESPONSE_BIT:
        return encode(Command.GENERIC_NACK, request.sequence, b"", status)
    if body is None:
        body = b"\x00" if request.command_id in (Command.SUBMIT_SM, Command.DATA_SM, Command.DELIVER_SM) else b""
    return encode(request.command_id | RESPONSE_BIT, request.sequence, body, status)


class PduReader:
    """Bytes in, whole PDUs out (``feed``). A length outside 16..MAX_PDU_BYTES is fatal."""

    def __init__(self, max_bytes: int = MAX_PDU_BYTES) -> None:
        self._buffer = bytearray()
        self.max_bytes = max_bytes

    def feed(self, data: bytes) -> list[Pdu]:
        self._buffer += data
        out: list[Pdu] = []
        while len(self._buffer) >= HEADER.size:
            length, command_id, status, sequence = HEADER.unpack_from(self._buffer)
            if not HEADER.size <= length <= self.max_bytes:
                raise SmppDecodeError(f"command_length {length}: 16 to {self.max_bytes} bytes", Status.RINVCMDLEN)
            if len(self._buffer) < length:
                break
            out.append(Pdu(command_id, status, sequence, bytes(self._buffer[HEADER.size:length])))
            del self._buffer[:length]
        return out

    @property
    def pending(self) -> int:
        return len(self._buffer)


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """What the gate reads of a submit_sm, data_sm or deliver_sm."""

    source: str  # as dialled: '+' added for an international TON (1)
    destination: str
    esm_class: int
    data_coding: int
    payload: bytes  # the message bytes (short_message, else message_payload), user data header removed

    @property
    def is_receipt(self) -> bool:
        """A delivery receipt or an acknowledgement (deliver_sm), not a subscriber's message."""
        return bool(self.esm_class & _RECEIPT_TYPES)

    @property
    def text(self) -> str:
        """The message text: UCS-2 (data_coding 8), Latin-1 (3), ASCII/IA5 or the SMSC default
        (0, 1; read as Latin-1: GSM's letters and digits are at the same places); else empty
        (binary, or an alphabet the gate does not read)."""
        if self.data_coding == 8:
            return self.payload.decode("utf-16-be", errors="replace")
        if self.data_coding in (0, 1, 3):
            return self.payload.decode("latin-1")
        return ""


class _Fields:
    """A cursor over one PDU body."""

    def __init__(self, body: bytes) -> None:
        self.body, self.at = body, 0

    def cstring(self, name: str, max_octets: int, status: Status = Status.RINVMSGLEN) -> str:
        end = self.body.find(b"\x00", self.at, self.at + max_octets)
        if end < 0:
            raise SmppDecodeError(f"{name}: not a C-string of at most {max_octets} octets", status)
        value = self.body[self.at:end].decode("latin-1")
        self.at = end + 1
        return value

    def octets(self, name: str, count: int) -> bytes:
        if self.at + count > len(self.body):
            raise SmppDecodeError(f"{name}: runs past the end of the PDU", Status.RINVMSGLEN)
        value = self.body[self.at:self.at + count]
        self.at += count
        return value

    def byte(self, name: str) -> int:
        return self.octets(name, 1)[0]

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.at < len(self.body):
            if self.at + 4 > len(self.body):
                raise SmppDecodeError("optional parameter: a truncated tag and length", Status.RINVPARLEN)
            tag, length = struct.unpack_from(">HH", self.body, self.at)
            self.at += 4
            found[tag] = self.octets(f"optional parameter 0x{tag:04x}", length)
        return found


def bind_system_id(body: bytes) -> str:
    return _Fields(body).cstring("system_id", 16)


def short_message(pdu: Pdu) -> ShortMessage:
    """The addresses and text of a submit_sm, deliver_sm or data_sm; ``SmppDecodeError`` if malformed."""
    fields = _Fields(pdu.body)
    fields.cstring("service_type", 6)
    source = _address(fields.byte("source_addr_ton"), fields, "source_addr", 65 if pdu.command_id == Command.DATA_SM
                      else 21, Status.RINVSRCADR)
    destination = _address(fields.byte("dest_addr_ton"), fields, "destination_addr",
                           65 if pdu.command_id == Command.DATA_SM else 21, Status.RINVDSTADR)
    esm_class = fields.byte("esm_class")
    if pdu.command_id == Command.DATA_SM:
        fields.octets("registered_delivery", 1)
        data_coding = fields.byte("data_coding")
        message = b""
    else:
        fields.octets("protocol_id and priority_flag", 2)
        fields.cstring("schedule_delivery_time", 17)
        fields.cstring("validity_period", 17)
        fields.octets("registered_delivery and replace_if_present_flag", 2)
        data_coding = fields.byte("data_coding")
        fields.octets("sm_default_msg_id", 1)
        length = fields.byte("sm_length")
        if length > 254:
            raise SmppDecodeError(f"sm_length {length}: at most 254", Status.RINVMSGLEN)
        message = fields.octets("short_message", length)
    tlvs = fields.tlvs()
    if not message and _MESSAGE_PAYLOAD in tlvs:
        message = tlvs[_MESSAGE_PAYLOAD]
    if esm_class & _UDHI and message:
        header = message[0] + 1
        if header > len(message):
            raise SmppDecodeError("user data header: longer than the message", Status.RINVMSGLEN)
        message = message[header:]
    return ShortMessage(source, destination, esm_class, data_coding, message)


def _address(ton: int, fields: _Fields, name: str, max_octets: int, status: Status) -> str:
    fields.byte(f"{name} npi")
    value = fields.cstring(name, max_octets, status)
    if ton == 1 and value and value[0].isdigit():  # international: the digits after the '+'
        return "+" + value
    return value
