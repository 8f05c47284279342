"""The SMPP proxy: bulk senders (ESMEs) bind to the gate, the gate binds on to the carrier's SMSC.

Every PDU is relayed unchanged, in order, both ways, except:

* a ``submit_sm`` / ``data_sm`` is a message to check first (``MessageService``, door ``smpp``):
  refused, it is answered ``ESME_RPROHIBITED`` (0x101) by the gate and never reaches the SMSC; a
  failed check (``check_failed``) is answered ``ESME_RX_T_APPN`` (0x64, the ESME may retry); a
  malformed one ``ESME_RINVMSGLEN`` / ``RINVSRCADR`` / ``RINVDSTADR``;
* a ``deliver_sm`` from the SMSC that is a subscriber's message to a registered port (not a
  delivery receipt) is read for an opt-out keyword; when the withdrawal cannot be recorded, the
  SMSC is answered ``ESME_RX_T_APPN`` and the message is not relayed (the SMSC delivers it again).

A PDU whose length is not 16..70,000 bytes ends the session (``generic_nack`` first). Each session
is bounded: ``max_sessions`` at once (the rest wait in the listen backlog), the SMSC connection
and every write have deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from dncgate.acceptor import Acceptor
from dncgate.errors import MessageError
from dncgate.messages.model import Message
from dncgate.messages.service import MessageService
from dncgate.messages.smpp.codec import (
    BINDS,
    Command,
    Pdu,
    PduReader,
    SmppDecodeError,
    Status,
    bind_system_id,
    response,
    short_message,
)
from dncgate.model import Reason
from dncgate.store.errors import StoreError

log = structlog.get_logger("dncgate.messages.smpp")
READ_CHUNK = 65_536
CLOSE_GRACE = 2.0  # after the ESME closed, for the SMSC's last answers


@dataclass(frozen=True, slots=True)
class SmppProxyConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    upstream_host: str = "127.0.0.1"
    upstream_port: int = 2776
    tenant: str | None = None
    max_sessions: int = 64
    connect_deadline: float = 5.0
    write_deadline: float = 10.0


class SmppProxy:
    def __init__(self, service: MessageService, config: SmppProxyConfig) -> None:
        self.service, self.config = service, config
        self._server: Acceptor | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.port: int | None = None

    async def start(self) -> None:
        """Listen (the gate's own accept loop: past ``max_sessions`` ESMEs wait in the backlog)."""
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), self._accept)

        self._server = Acceptor("smpp", protocol, self.config.host, self.config.port,
                                max_connections=self.config.max_sessions)
        await self._server.start()
        self.port = self._server.port
        log.info("smpp.listening", host=self.config.host, port=self.port,
                 upstream=f"{self.config.upstream_host}:{self.config.upstream_port}")

    async def close(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.wait(set(self._sessions), timeout=timeout)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            await _Session(self, reader, writer).run()
        except asyncio.CancelledError:
            # close() cancels the sessions; ending normally lets asyncio's stream callback close the
            # transport without logging the cancellation as an unhandled error
            log.debug("smpp.session_closed_by_shutdown")
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._sessions.discard(task)
            if self._server is not None:
                self._server.release()


class _Session:
    def __init__(self, proxy: SmppProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.proxy, self.esme_reader, self.esme = proxy, reader, writer
        self.system_id = ""
        self.log = log.bind(peer=str(writer.get_extra_info("peername")))

    async def run(self) -> None:
        config = self.proxy.config
        try:
            async with asyncio.timeout(config.connect_deadline):
                smsc_reader, smsc = await asyncio.open_connection(config.upstream_host, config.upstream_port)
        except (OSError, TimeoutError) as exc:
            self.log.error("smpp.upstream_unreachable", error=str(exc) or "timeout")
            return
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
            for task in (esme_pump, smsc_pump):
                if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                    self.log.warning("smpp.session_ended", error=f"{type(error).__name__}: {error}")
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
        while data := await self.esme_reader.read(READ_CHUNK):
            try:
                pdus = frames.feed(data)
            except SmppDecodeError as exc:
                self.log.warning("smpp.bad_pdu", side="esme", error=str(exc))
                await self._send(self.esme, response(Pdu(Command.GENERIC_NACK, 0, 0, b""), exc.status))
                return
            for pdu in pdus:
                if pdu.command_id in BINDS:
                    with contextlib.suppress(SmppDecodeError):
                        self.system_id = bind_system_id(pdu.body)
                if pdu.command_id in (Command.SUBMIT_SM, Command.DATA_SM):
                    refusal = await self._check(pdu)
                    if refusal is not None:
                        await self._send(self.esme, refusal)
                        continue
                await self._send(smsc, pdu.raw)

    async def _from_smsc(self, reader: asyncio.StreamReader, smsc: asyncio.StreamWriter) -> None:
        frames = PduReader()
        while data := await reader.read(READ_CHUNK):
            try:
                pdus = frames.feed(data)
            except SmppDecodeError as exc:
                self.log.warning("smpp.bad_pdu", side="smsc", error=str(exc))
                return
            for pdu in pdus:
                if pdu.command_id == Command.DELIVER_SM:
                    refusal = await self._reply(pdu)
                    if refusal is not None:
                        await self._send(smsc, refusal)
                        continue
                await self._send(self.esme, pdu.raw)

    async def _check(self, pdu: Pdu) -> bytes | None:
        """None: relay the submit to the SMSC; else the gate's answer to the ESME."""
        try:
            sm = short_message(pdu)
            outcome = await self.proxy.service.handle(self._message(sm.source, sm.destination, sm.text, pdu), self.log)
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
