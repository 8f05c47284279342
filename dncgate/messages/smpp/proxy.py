"""The SMPP proxy: bulk senders (ESMEs) bind to the gate, the gate binds on to the carrier's SMSC.

From the ESME only a message (checked) or a session command (``PASSED_FROM_ESME``: bind_*, unbind,
enquire_link, generic_nack, their answers to the SMSC, query_sm, cancel_sm) goes on to the SMSC;
``replace_sm`` and ``broadcast_sm`` (recipients the gate cannot check) are answered
``ESME_RPROHIBITED``; any other command ``generic_nack`` ``ESME_RINVCMDID``. What is relayed is
relayed unchanged, in order, both ways, except:

* a ``submit_multi`` is checked per destination (one audit record each): the refused ones are
  taken out of the PDU and added to the SMSC's ``unsuccess_sme`` list; all refused, the gate
  answers ``ESME_RPROHIBITED`` with the list; one naming a distribution list is refused whole;
* a ``submit_sm`` / ``data_sm`` is a message to check first (``MessageService``, door ``smpp``):
  refused, it is answered ``ESME_RPROHIBITED`` (0x101) by the gate and never reaches the SMSC; a
  failed check (``check_failed``) is answered ``ESME_RX_T_APPN`` (0x64, the ESME may retry); a
  malformed one ``ESME_RINVMSGLEN`` / ``RINVSRCADR`` / ``RINVDSTADR``;
* a ``deliver_sm`` from the SMSC that is a subscriber's message to a registered port (not a
  delivery receipt) is read for an opt-out keyword; when the withdrawal cannot be recorded, the
  SMSC is answered ``ESME_RX_T_APPN`` and the message is not relayed (the SMSC delivers it again).

A PDU whose length is not 16..70,000 bytes ends the session (``generic_nack`` first). ESMEs connect
through the call doors' ``SessionServer``: only peers in ``allow``, ``max_sessions`` at once and
``max_sessions_per_peer`` per address (beyond: closed, counted, logged); the SMSC connection and
every write have deadlines, and an ESME silent for ``idle_deadline`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

from dncgate.errors import DncgateError, MessageError
from dncgate.messages.model import Message
from dncgate.messages.service import MessageService
from dncgate.messages.smpp.codec import (
    BINDS,
    RESPONSE_BIT,
    Command,
    Destination,
    Pdu,
    PduReader,
    SmppDecodeError,
    Status,
    bind_system_id,
    encode,
    merge_multi_response,
    multi_response_body,
    response,
    short_message,
    submit_multi,
    unsuccess_sme,
)
from dncgate.model import Reason
from dncgate.sessions import Peer, ServerLimits, SessionServer
from dncgate.store.errors import StoreError

log = structlog.get_logger("dncgate.messages.smpp")
READ_CHUNK = 65_536
MAX_PENDING_BINDS = 8  # binds awaiting the SMSC's answer, per session (one is the norm)
MAX_PENDING_MULTI = 1024  # submit_multi sent on with refusals, awaiting the SMSC's answer, per session
# what an ESME may send that is not a message: session and query commands, and its answers to the SMSC
PASSED_FROM_ESME = frozenset({
    Command.BIND_RECEIVER, Command.BIND_TRANSMITTER, Command.BIND_TRANSCEIVER, Command.UNBIND,
    Command.UNBIND_RESP, Command.ENQUIRE_LINK, Command.ENQUIRE_LINK_RESP, Command.GENERIC_NACK,
    Command.DELIVER_SM_RESP, Command.DATA_SM_RESP, Command.QUERY_SM, Command.CANCEL_SM,
})
# messages whose recipients the gate cannot check: replace_sm (new content for an earlier message),
# broadcast_sm (a cell broadcast to an area)
REFUSED_FROM_ESME = frozenset({Command.REPLACE_SM, Command.BROADCAST_SM})
CLOSE_GRACE = 2.0  # after the ESME closed, for the SMSC's last answers


@dataclass(frozen=True, slots=True)
class SmppProxyConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    upstream_host: str = "127.0.0.1"
    upstream_port: int = 2776
    tenant: str | None = None
    limits: ServerLimits = field(default_factory=lambda: ServerLimits(max_sessions=64, max_sessions_per_peer=16))
    connect_deadline: float = 5.0
    write_deadline: float = 10.0
    idle_deadline: float = 120.0  # an ESME silent this long (no PDU, not even enquire_link) is closed


class SmppProxy:
    """The ESMEs' listener: the call doors' SessionServer (peer allowlist, total and per-peer caps,
    refusals logged and counted, bounded close), each session a proxied SMPP session."""

    def __init__(self, service: MessageService, config: SmppProxyConfig) -> None:
        self.service, self.config = service, config
        self._server: SessionServer | None = None
        self.port: int | None = None

    @property
    def server(self) -> SessionServer | None:
        return self._server

    async def start(self) -> None:
        self._server = SessionServer("smpp", self._session, host=self.config.host, port=self.config.port,
                                     limits=self.config.limits)
        await self._server.start()
        self.port = self._server.port
        log.info("smpp.listening", host=self.config.host, port=self.port,
                 upstream=f"{self.config.upstream_host}:{self.config.upstream_port}")

    async def close(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            await self._server.close(timeout)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> str:
        try:
            return await _Session(self, reader, writer).run()
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()


class _Idle(DncgateError):
    """The ESME sent nothing within the idle deadline."""


class _Session:
    def __init__(self, proxy: SmppProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.proxy, self.esme_reader, self.esme = proxy, reader, writer
        self.system_id = ""  # the account: set when the SMSC accepted the ESME's bind
        self.binding: dict[int, str] = {}  # a bind's sequence -> the system_id it names, until the SMSC answers
        self.pending_multi: dict[int, list[bytes]] = {}  # sequence -> the gate's unsuccess_sme entries
        self.log = log.bind(peer=str(writer.get_extra_info("peername")))

    async def run(self) -> str:
        """The session's outcome: ``upstream_unreachable``, ``idle``, ``ended``."""
        config = self.proxy.config
        try:
            async with asyncio.timeout(config.connect_deadline):
                smsc_reader, smsc = await asyncio.open_connection(config.upstream_host, config.upstream_port)
        except (OSError, TimeoutError) as exc:
            self.log.error("smpp.upstream_unreachable", error=str(exc) or "timeout")
            return "upstream_unreachable"
        try:
            esme_pump = asyncio.create_task(self._from_esme(smsc))
            smsc_pump = asyncio.create_task(self._from_smsc(smsc_reader, smsc))
            done, _ = await asyncio.wait((esme_pump, smsc_pump), return_when=asyncio.FIRST_COMPLETED)
            if esme_pump in done and not esme_pump.exception() and smsc.can_write_eof():
                smsc.write_eof()  # the ESME is done: what the SMSC still answers (unbind_resp) gets through
                await asyncio.wait((smsc_pump,), timeout=CLOSE_GRACE)
            for task in (esme_pump, smsc_pump):
                task.cancel()
            await asyncio.gather(esme_pump, smsc_pump, return_exceptions=True)
            outcome = "ended"
            for task in (esme_pump, smsc_pump):
                if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                    if task is esme_pump and isinstance(error, _Idle):
                        self.log.info("smpp.esme_idle", seconds=config.idle_deadline, account=self.system_id)
                        outcome = "idle"
                    else:
                        self.log.warning("smpp.session_ended", error=f"{type(error).__name__}: {error}")
            return outcome
        finally:
            smsc.close()
            with contextlib.suppress(OSError):
                await smsc.wait_closed()

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self.proxy.config.write_deadline):
            await writer.drain()

    async def _from_esme(self, smsc: asyncio.StreamWriter) -> None:
        frames = PduReader()
        while data := await self._read_esme():
            try:
                pdus = frames.feed(data)
            except SmppDecodeError as exc:
                self.log.warning("smpp.bad_pdu", side="esme", error=str(exc))
                await self._send(self.esme, response(Pdu(Command.GENERIC_NACK, 0, 0, b""), exc.status))
                return
            for pdu in pdus:
                if pdu.command_id in BINDS and len(self.binding) < MAX_PENDING_BINDS:
                    with contextlib.suppress(SmppDecodeError):
                        self.binding[pdu.sequence] = bind_system_id(pdu.body)[:64]
                to_smsc, to_esme = await self._screen(pdu)
                if to_esme is not None:
                    await self._send(self.esme, to_esme)
                if to_smsc is not None:
                    await self._send(smsc, to_smsc)

    async def _read_esme(self) -> bytes:
        try:
            async with asyncio.timeout(self.proxy.config.idle_deadline):
                return await self.esme_reader.read(READ_CHUNK)
        except TimeoutError:
            raise _Idle from None

    async def _screen(self, pdu: Pdu) -> tuple[bytes | None, bytes | None]:
        """(what goes on to the SMSC, what the gate answers the ESME): a message is checked, a
        session command passes, anything else is refused."""
        if pdu.command_id in (Command.SUBMIT_SM, Command.DATA_SM):
            refusal = await self._check(pdu)
            return (pdu.raw, None) if refusal is None else (None, refusal)
        if pdu.command_id == Command.SUBMIT_MULTI:
            return await self._check_multi(pdu)
        if pdu.command_id in PASSED_FROM_ESME:
            return pdu.raw, None
        if pdu.command_id in REFUSED_FROM_ESME:
            self.log.warning("smpp.command_refused", command_id=f"0x{pdu.command_id:08x}", sequence=pdu.sequence,
                             account=self.system_id)
            return None, response(pdu, Status.RPROHIBITED)
        self.log.warning("smpp.command_unexpected", command_id=f"0x{pdu.command_id:08x}", sequence=pdu.sequence,
                         account=self.system_id)
        return None, encode(Command.GENERIC_NACK, pdu.sequence, b"", Status.RINVCMDID)

    async def _from_smsc(self, reader: asyncio.StreamReader, smsc: asyncio.StreamWriter) -> None:
        frames = PduReader()
        while data := await reader.read(READ_CHUNK):
            try:
                pdus = frames.feed(data)
            except SmppDecodeError as exc:
                self.log.warning("smpp.bad_pdu", side="smsc", error=str(exc))
                return
            for pdu in pdus:
                if pdu.command_id & ~RESPONSE_BIT in BINDS and pdu.command_id & RESPONSE_BIT:
                    bound = self.binding.pop(pdu.sequence, "")
                    if pdu.status == Status.ROK:
                        self.system_id = bound
                if pdu.command_id == Command.SUBMIT_MULTI_RESP and pdu.sequence in self.pending_multi:
                    pdu = self._merged(pdu, self.pending_multi.pop(pdu.sequence))
                if pdu.command_id == Command.DELIVER_SM:
                    refusal = await self._reply(pdu)
                    if refusal is not None:
                        await self._send(smsc, refusal)
                        continue
                await self._send(self.esme, pdu.raw)

    async def _check(self, pdu: Pdu, addressed: tuple[str, str, str] | None = None) -> bytes | None:
        """None: relay the submit to the SMSC; else the gate's answer to the ESME. ``addressed``:
        (source, destination, text) already read (one destination of a submit_multi)."""
        try:
            if addressed is None:
                sm = short_message(pdu)
                addressed = (sm.source, sm.destination, sm.text)
            outcome = await self.proxy.service.handle(self._message(*addressed, pdu), self.log)
        except SmppDecodeError as exc:
            self.log.warning("smpp.bad_submit", error=str(exc), sequence=pdu.sequence)
            return response(pdu, exc.status)
        except MessageError as exc:
            self.log.warning("smpp.bad_submit", error=str(exc), sequence=pdu.sequence)
            status = Status.RINVSRCADR if str(exc).startswith("sender") else Status.RINVDSTADR \
                if str(exc).startswith("recipient") else Status.RINVMSGLEN
            return response(pdu, status)
        except StoreError as exc:  # a reply whose opt-out could not be recorded: the ESME retries
            self.log.error("smpp.check_unavailable", error=str(exc))
            return response(pdu, Status.RX_T_APPN)
        if outcome.deliver:
            return None
        check = outcome.check
        if check is not None and check.decision.reason is Reason.CHECK_FAILED:
            return response(pdu, Status.RX_T_APPN)
        if check is not None and check.decision.reason is Reason.INVALID_NUMBER:
            return response(pdu, Status.RINVDSTADR)
        return response(pdu, Status.RPROHIBITED)

    async def _check_multi(self, pdu: Pdu) -> tuple[bytes | None, bytes | None]:
        """Each destination of a submit_multi checked (one audit record each): all allowed, it is
        relayed unchanged; some refused, it is relayed to the rest and the SMSC's answer gets the
        refused ones in its unsuccess_sme list; all refused, the gate answers (ESME_RPROHIBITED,
        each destination with its status). A distribution list (members unknown) refuses the PDU."""
        try:
            multi = submit_multi(pdu)
        except SmppDecodeError as exc:
            self.log.warning("smpp.bad_submit", error=str(exc), sequence=pdu.sequence)
            return None, response(pdu, exc.status, b"")
        if multi.distribution_lists:
            self.log.warning("smpp.distribution_list_refused", sequence=pdu.sequence, account=self.system_id)
            return None, response(pdu, Status.RPROHIBITED, multi_response_body("", []))
        if len(self.pending_multi) >= MAX_PENDING_MULTI:
            return None, response(pdu, Status.RTHROTTLED, multi_response_body("", []))
        kept: list[Destination] = []
        refused: list[bytes] = []
        for destination in multi.destinations:
            status = await self._check_one(pdu, multi.source, destination.dialled, multi.message.text)
            if status is Status.RINVSRCADR:  # the sender is every destination's: the whole PDU
                return None, response(pdu, status, multi_response_body("", []))
            if status is None:
                kept.append(destination)
            else:
                refused.append(unsuccess_sme(destination, status))
        if not refused:
            return pdu.raw, None
        if not kept:
            return None, response(pdu, Status.RPROHIBITED, multi_response_body("", refused))
        self.pending_multi[pdu.sequence] = refused
        return encode(pdu.command_id, pdu.sequence, multi.body_with(kept), pdu.status), None

    async def _check_one(self, pdu: Pdu, source: str, destination: str, text: str) -> Status | None:
        """None: deliver to this destination; else the status it is refused with."""
        answer = await self._check(pdu, (source, destination, text))
        if answer is None:
            return None
        return Status(int.from_bytes(answer[8:12], "big"))

    def _merged(self, pdu: Pdu, refused: list[bytes]) -> Pdu:
        try:
            return Pdu(pdu.command_id, pdu.status, pdu.sequence, merge_multi_response(pdu.body, refused))
        except SmppDecodeError as exc:  # relayed as it came: the SMSC's own answer stands
            self.log.warning("smpp.bad_multi_response", error=str(exc), sequence=pdu.sequence)
            return pdu

    async def _reply(self, pdu: Pdu) -> bytes | None:
        """A subscriber's message from the SMSC: an opt-out keyword is recorded before it is relayed."""
        try:
            sm = short_message(pdu)
            if sm.is_receipt:
                return None
            await self.proxy.service.handle_reply(self._message(sm.source, sm.destination, sm.text, pdu), self.log)
        except (SmppDecodeError, MessageError) as exc:  # relayed as it came: the ESME answers it
            self.log.warning("smpp.bad_deliver", error=str(exc), sequence=pdu.sequence)
        except StoreError as exc:
            self.log.error("smpp.opt_out_unrecorded", error=str(exc), sequence=pdu.sequence)
            return response(pdu, Status.RX_T_APPN)
        return None

    def _message(self, sender: str, recipient: str, text: str, pdu: Pdu) -> Message:
        return Message(sender=sender, recipient=recipient, body=text, door="smpp", tenant=self.proxy.config.tenant,
                       message_id=f"{self.system_id}:{pdu.sequence}", account=self.system_id[:64])
