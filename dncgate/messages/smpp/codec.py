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
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    CANCEL_SM = 0x00000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103
    BROADCAST_SM = 0x00000111


class Status(IntEnum):
    ROK = 0x00000000
    RINVMSGLEN = 0x00000001  # message length is invalid
    RINVCMDLEN = 0x00000002  # command length is invalid
    RINVCMDID = 0x00000003  # invalid command id
    RSYSERR = 0x00000008
    RINVSRCADR = 0x0000000A
    RINVDSTADR = 0x0000000B
    RINVNUMDESTS = 0x00000033  # invalid number of destinations
    RINVDLNAME = 0x00000034  # invalid distribution list name
    RTHROTTLED = 0x00000058  # throttling error: the ESME exceeded its allowed rate
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
    esm_class, data_coding, message = _content(fields, pdu.command_id)
    return ShortMessage(source, destination, esm_class, data_coding, message)


def _content(fields: _Fields, command_id: int) -> tuple[int, int, bytes]:
    """esm_class, data_coding and the message bytes: the part of a submit_sm, deliver_sm, data_sm
    or submit_multi after the addresses."""
    esm_class = fields.byte("esm_class")
    if command_id == Command.DATA_SM:
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
    return esm_class, data_coding, message


def _address(ton: int, fields: _Fields, name: str, max_octets: int, status: Status) -> str:
    fields.byte(f"{name} npi")
    value = fields.cstring(name, max_octets, status)
    if ton == 1 and value and value[0].isdigit():  # international: the digits after the '+'
        return "+" + value
    return value


@dataclass(frozen=True, slots=True)
class Destination:
    """One SME address of a submit_multi (dest_flag 1)."""

    ton: int
    npi: int
    address: str  # as on the wire
    dialled: str  # as dialled: '+' added for an international TON

    @property
    def raw(self) -> bytes:
        return bytes((1, self.ton, self.npi)) + self.address.encode("latin-1") + b"\x00"


@dataclass(frozen=True, slots=True)
class MultiSubmit:
    """What the gate reads of a submit_multi: its SME destinations, its distribution lists (whose
    members the gate cannot see), the message, and the body around the destinations (to relay it
    with fewer of them)."""

    source: str
    destinations: tuple[Destination, ...]
    distribution_lists: tuple[str, ...]
    message: ShortMessage  # destination "": one per Destination
    head: bytes  # the body before number_of_dests
    tail: bytes  # the body after the destinations (esm_class onwards)

    def body_with(self, kept: list[Destination]) -> bytes:
        """The submit_multi body to the ``kept`` destinations only (no distribution list)."""
        return self.head + bytes((len(kept),)) + b"".join(d.raw for d in kept) + self.tail


MAX_DESTINATIONS = 255  # number_of_dests is one octet (SMPP 3.4 section 4.5.1: at most 254 in practice)


def submit_multi(pdu: Pdu) -> MultiSubmit:
    """The destinations and text of a submit_multi (SMPP 3.4 section 4.5.1); ``SmppDecodeError`` if malformed."""
    fields = _Fields(pdu.body)
    fields.cstring("service_type", 6)
    source = _address(fields.byte("source_addr_ton"), fields, "source_addr", 21, Status.RINVSRCADR)
    head_end = fields.at
    count = fields.byte("number_of_dests")
    if count == 0:
        raise SmppDecodeError("number_of_dests: at least one destination", Status.RINVNUMDESTS)
    destinations: list[Destination] = []
    lists: list[str] = []
    for _ in range(count):
        flag = fields.byte("dest_flag")
        if flag == 1:
            ton, npi = fields.byte("dest_addr_ton"), fields.byte("dest_addr_npi")
            address = fields.cstring("destination_addr", 21, Status.RINVDSTADR)
            dialled = "+" + address if ton == 1 and address and address[0].isdigit() else address
            destinations.append(Destination(ton, npi, address, dialled))
        elif flag == 2:
            lists.append(fields.cstring("dl_name", 21, Status.RINVDLNAME))
        else:
            raise SmppDecodeError(f"dest_flag {flag}: 1 (an SME address) or 2 (a distribution list)",
                                  Status.RINVDSTADR)
    tail_start = fields.at
    esm_class, data_coding, message = _content(fields, pdu.command_id)
    return MultiSubmit(source, tuple(destinations), tuple(lists),
                       ShortMessage(source, "", esm_class, data_coding, message),
                       pdu.body[:head_end], pdu.body[tail_start:])


def unsuccess_sme(destination: Destination, status: Status) -> bytes:
    """One unsuccess_sme entry of a submit_multi_resp (SMPP 3.4 section 4.5.2)."""
    return bytes((destination.ton, destination.npi)) + destination.address.encode("latin-1") + b"\x00" + \
        struct.pack(">I", status)


def multi_response_body(message_id: str, unsuccessful: list[bytes]) -> bytes:
    return message_id.encode("latin-1") + b"\x00" + bytes((len(unsuccessful),)) + b"".join(unsuccessful)


def merge_multi_response(body: bytes, unsuccessful: list[bytes]) -> bytes:
    """The SMSC's submit_multi_resp body with the gate's refusals added to its unsuccess_sme list."""
    fields = _Fields(body)
    message_id = fields.cstring("message_id", 65)
    theirs = fields.byte("no_unsuccess") if fields.at < len(body) else 0
    rest = body[fields.at:]
    if theirs + len(unsuccessful) > MAX_DESTINATIONS:
        raise SmppDecodeError("no_unsuccess: more than 255 entries", Status.RINVNUMDESTS)
    return message_id.encode("latin-1") + b"\x00" + bytes((theirs + len(unsuccessful),)) + rest + \
        b"".join(unsuccessful)
