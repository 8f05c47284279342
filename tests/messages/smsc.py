"""A small SMSC on loopback for the SMPP proxy's tests, speaking SMPP through smpplib's PDUs (not
the gate's codec): it answers binds, submits (message ids m-1, m-2, ...), enquire_link and unbind,
a submit_multi (by hand: smpplib does not read it), keeps what it received, and can send a
deliver_sm (a subscriber's message) to the bound ESME."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any

import smpplib.consts
import smpplib.smpp
from smpplib.client import SimpleSequenceGenerator

SUBMIT_MULTI = 0x00000021
RESPONSES = {"bind_transceiver": "bind_transceiver_resp", "bind_transmitter": "bind_transmitter_resp",
             "bind_receiver": "bind_receiver_resp", "submit_sm": "submit_sm_resp", "enquire_link": "enquire_link_resp",
             "unbind": "unbind_resp", "data_sm": "data_sm_resp"}


class Smsc:
    def __init__(self) -> None:
        self.received: list[Any] = []  # every PDU, parsed by smpplib
        self.raw: list[bytes] = []
        self.multis: list[bytes] = []  # submit_multi PDUs as they came (answered m-N, no unsuccess_sme)
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0
        self._ids = 0
        self._deliver_sequence = 1000
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def submits(self) -> list[Any]:
        return [p for p in self.received if p.command == "submit_sm"]

    async def wait_for(self, command: str, count: int) -> None:
        """Until ``count`` PDUs of ``command`` have come (the caller bounds the wait)."""
        async with self._changed:
            await self._changed.wait_for(lambda: sum(p.command == command for p in self.received) >= count)

    async def deliver(self, source: str, destination: str, text: bytes, *, data_coding: int = 0) -> None:
        """A subscriber's message (deliver_sm) to the last ESME that bound."""
        pdu = smpplib.smpp.make_pdu("deliver_sm", client=SimpleSequenceGenerator(), source_addr_ton=1,
                                    source_addr=source.lstrip("+"), dest_addr_ton=0, destination_addr=destination,
                                    short_message=text, data_coding=data_coding)
        self._deliver_sequence += 1
        pdu.sequence = self._deliver_sequence
        writer = self._writers[-1]
        writer.write(pdu.generate())
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            await self._answer(reader, writer)
        finally:
            writer.close()  # the ESME (through the proxy) is done: so is this session

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readexactly(4)
                (length,) = struct.unpack(">I", head)
                raw = head + await reader.readexactly(length - 4)
                self.raw.append(raw)
                if struct.unpack_from(">I", raw, 4)[0] == SUBMIT_MULTI:  # smpplib does not read it
                    self.multis.append(raw)
                    self._ids += 1
                    body = f"m-{self._ids}".encode() + b"\x00\x00"  # message_id, no_unsuccess 0
                    writer.write(struct.pack(">IIII", 16 + len(body), SUBMIT_MULTI | 0x80000000, 0,
                                             struct.unpack_from(">I", raw, 12)[0]) + body)
                    await writer.drain()
                    continue
                pdu = smpplib.smpp.parse_pdu(raw, client=SimpleSequenceGenerator(), allow_unknown_opt_params=True)
                self.received.append(pdu)
                async with self._changed:
                    self._changed.notify_all()
                answer = RESPONSES.get(pdu.command)
                if answer is None:
                    continue
                kwargs: dict[str, Any] = {}
                if answer.startswith("bind"):
                    kwargs["system_id"] = "test-smsc"
                if answer in ("submit_sm_resp", "data_sm_resp"):
                    self._ids += 1
                    kwargs["message_id"] = f"m-{self._ids}"
                resp = smpplib.smpp.make_pdu(answer, client=SimpleSequenceGenerator(),
                                             status=smpplib.consts.SMPP_ESME_ROK, **kwargs)
                resp.sequence = pdu.sequence
                writer.write(resp.generate())
                await writer.drain()
