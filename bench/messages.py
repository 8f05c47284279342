"""Message checks per second and their latency through each path, each beside its baseline in one run:

* in process: ``MessageService.handle`` (an SMS) beside ``Gate.check`` of a call to the same number;
* HTTP: ``POST /v1/messages/check`` beside ``GET /v1/check`` (aiohttp, keep-alive, 127.0.0.1);
* SMPP: submit_sm -> submit_sm_resp through the gate's proxy beside the same submits straight to the
  SMSC (a minimal asyncio SMSC on 127.0.0.1; the ESME is a raw asyncio client, one PDU in flight);
* FreeSWITCH chatplan: a MESSAGE event over the inbound event socket to the gate's SMS::SEND_MESSAGE.

SQLite store on a temp file, 100,000 numbers listed, 30 % of recipients listed. Latency is one
request at a time (p50/p99); the rate is 32 concurrent (HTTP, SMPP: 32 connections). Not a test: it
asserts nothing. Asterisk's path (SIPp -> Asterisk -> CURL) is not measured here.

    .venv/bin/python bench/messages.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from urllib.parse import quote

import aiohttp
import structlog
from aiohttp import web

from dncgate.api.app import install_api
from dncgate.api.context import ApiContext
from dncgate.api.keys import hash_key
from dncgate.audit import AuditSink
from dncgate.esl.inbound import InboundClient, InboundConfig
from dncgate.gate import CheckRequest, Gate
from dncgate.http import make_app
from dncgate.logs import configure
from dncgate.messages.chatplan import ChatplanDoor, run_chatplan
from dncgate.messages.model import Message
from dncgate.messages.service import MessageService
from dncgate.messages.smpp.codec import Command, PduReader, encode
from dncgate.messages.smpp.proxy import SmppProxy, SmppProxyConfig
from dncgate.metrics import GateMetrics
from dncgate.model import Originator, PortUse, TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.sessions import ServerLimits
from dncgate.settings import ApiKeySettings, ApiSettings, ConsentSettings
from dncgate.settings.messages import MessagesSettings, SenderPortSettings, TenantMessageSettings
from dncgate.store.sqlite import SqliteListStore
from dncgate.store.sqlite.ledger import SqliteLedger

PORT = "106900001234"
KEY = "dncg_bench-messages-key-0123456789"
CONCURRENCY = 32
LOG = structlog.get_logger("bench.messages")
Timed = Callable[[str], Awaitable[object]]


def _stats(latencies: list[float], rate: float) -> str:
    latencies.sort()
    return (f"p50 {statistics.median(latencies):8.1f} us  p99 {latencies[int(len(latencies) * 0.99)]:8.1f} us  "
            f"{rate:8.0f} /s")


async def _measure(one: Timed, numbers: Sequence[str], concurrent: Sequence[Timed]) -> str:
    for number in numbers[:200]:  # warm-up
        await one(number)
    latencies = []
    for number in numbers:
        started = time.perf_counter_ns()
        await one(number)
        latencies.append((time.perf_counter_ns() - started) / 1000)
    started = time.perf_counter()
    await asyncio.gather(*(_run_part(worker, numbers[i::len(concurrent)]) for i, worker in enumerate(concurrent)))
    return _stats(latencies, len(numbers) / (time.perf_counter() - started))


async def _run_part(worker: Timed, part: Sequence[str]) -> None:
    for number in part:
        await worker(number)


class Smsc:
    """Answers every submit_sm with submit_sm_resp; binds and the rest with an empty response."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = PduReader()
        while data := await reader.read(65536):
            for pdu in frames.feed(data):
                body = b"m-1\x00" if pdu.command_id == Command.SUBMIT_SM else b"smsc\x00"
                writer.write(encode(pdu.command_id | 0x80000000, pdu.sequence, body))
        writer.close()


def _submit(destination: str, sequence: int) -> bytes:
    body = (b"\x00\x00\x00" + PORT.encode() + b"\x00\x00\x00" + destination.encode() + b"\x00"
            + b"\x00\x00\x00\x00\x00\x00\x00\x00\x00" + bytes([12]) + b"Loans at 3.1")
    return encode(Command.SUBMIT_SM, sequence, body)


async def _esme(port: int) -> Timed:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode(Command.BIND_TRANSMITTER, 1, b"bench\x00pw\x00\x00\x34\x00\x00\x00"))
    await reader.readexactly(struct.unpack(">I", await reader.readexactly(4))[0] - 4)
    sequence = 1

    async def submit(number: str) -> object:
        nonlocal sequence
        sequence += 1
        writer.write(_submit(number, sequence))
        length = struct.unpack(">I", await reader.readexactly(4))[0]
        return await reader.readexactly(length - 4)
    return submit


async def bench_smpp(service: MessageService, numbers: Sequence[str]) -> None:
    smsc = await asyncio.start_server(Smsc().serve, "127.0.0.1", 0)
    smsc_port = smsc.sockets[0].getsockname()[1]
    limits = ServerLimits(max_sessions=CONCURRENCY + 2, max_sessions_per_peer=CONCURRENCY + 2)
    proxy = SmppProxy(service, SmppProxyConfig(port=0, upstream_port=smsc_port, tenant="acme", limits=limits))
    await proxy.start()
    for label, port in (("SMPP straight to the SMSC (baseline)", smsc_port),
                        ("SMPP through the gate's proxy", proxy.port or 0)):
        one = await _esme(port)
        workers = [await _esme(port) for _ in range(CONCURRENCY)]
        print(f"{label:44} {await _measure(one, numbers, workers)}")
    await proxy.close()
    smsc.close()


async def bench_http(gate: Gate, ledger: SqliteLedger, service: MessageService, store: SqliteListStore,
                     numbers: Sequence[str]) -> None:
    app = make_app(store, GateMetrics(), {"agi": False, "esl": False})
    install_api(app, ApiContext.of(gate, ledger, ApiSettings(enabled=True, keys={
        "bench": ApiKeySettings("acme", hash_key(KEY))}), messages=service))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as http:
        async def call(number: str) -> object:
            async with http.get(f"http://127.0.0.1:{port}/v1/check", params={"number": number,
                                                                            "entity": "bank-1"}) as reply:
                return await reply.read()

        async def message(number: str) -> object:
            async with http.post(f"http://127.0.0.1:{port}/v1/messages/check",
                                 json={"from": PORT, "to": number, "body": "Loans at 3.1%"}) as reply:
                return await reply.read()

        print(f"{'HTTP GET /v1/check, a call (baseline)':44} {await _measure(call, numbers, [call] * CONCURRENCY)}")
        print(f"{'HTTP POST /v1/messages/check':44} {await _measure(message, numbers, [message] * CONCURRENCY)}")
    await runner.cleanup()


async def bench_chatplan(service: MessageService, numbers: Sequence[str]) -> None:
    template = (Path(__file__).resolve().parents[1] / "tests/fixtures/esl_chat/message_event.plain").read_bytes()
    sent: asyncio.Queue[None] = asyncio.Queue()
    events: asyncio.Queue[bytes] = asyncio.Queue()

    async def freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Content-Type: auth/request\n\n")
        for reply in (b"+OK accepted", b"+OK event listener enabled plain"):
            await reader.readuntil(b"\n\n")
            writer.write(b"Content-Type: command/reply\nReply-Text: " + reply + b"\n\n")

        async def feed() -> None:
            while True:
                writer.write(await events.get())
        feeder = asyncio.create_task(feed())
        try:
            while True:
                head = await reader.readuntil(b"\n\n")
                length = next((int(x.split(b":")[1]) for x in head.split(b"\n") if x.startswith(b"Content-Length")), 0)
                await reader.readexactly(length)
                writer.write(b"Content-Type: command/reply\nReply-Text: +OK 1\n\n")
                sent.put_nowait(None)
        except (asyncio.IncompleteReadError, ConnectionError):
            feeder.cancel()

    server = await asyncio.start_server(freeswitch, "127.0.0.1", 0)
    config = InboundConfig(port=server.sockets[0].getsockname()[1], events=("MESSAGE",), event_format="plain")
    stop = asyncio.Event()
    task = asyncio.create_task(run_chatplan(ChatplanDoor(service, tenant="acme"), lambda: InboundClient(config), stop))

    async def one(number: str) -> object:
        inner = (template.replace(b"@FROM_USER@", PORT.encode()).replace(b"@TO_USER@", quote(number).encode())
                 .replace(b"@BODY_LENGTH@", b"5").replace(b"@BODY@", b"Hello"))
        events.put_nowait(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner)
        return await sent.get()
    print(f"{'FreeSWITCH chatplan, event -> sendevent':44} {await _measure(one, numbers, [one])} (one at a time)")
    stop.set()
    task.cancel()
    server.close()


async def main(count: int, tmp: str) -> None:
    configure("error")  # a check past the store deadline on a busy host logs a warning per message
    path = Path(tmp) / "bench.sqlite3"
    store = SqliteListStore(path)
    rng = random.Random(7)
    listed = rng.sample(range(8613000000000, 8613999999999), 100_000)
    await store.replace_list("national", listed)
    numbers = [f"+{rng.choice(listed) if rng.random() < 0.3 else rng.randrange(8613000000000, 8613999999999)}"
               for _ in range(count)]
    ledger = SqliteLedger(path, ConsentSettings())
    audit = AuditSink(store)
    audit.start()
    tenants = {"acme": TenantPolicy("acme", DialPlan(region="CN"))}
    gate = Gate(tenants, store, audit, default_tenant="acme")
    settings = MessagesSettings(enabled=True, tenants={"acme": TenantMessageSettings(
        ports={PORT: SenderPortSettings(PortUse.MARKETING, "bank-1", accounts=("bench",))},  # the SMPP ESME's
        notice="Not delivered.")})  # one answer each
    service = MessageService.of(gate, ledger, settings)

    async def call(number: str) -> object:
        return await gate.check(CheckRequest(number, "api", tenant="acme", originator=Originator(entity="bank-1")), LOG)

    async def message(number: str) -> object:
        return await service.handle(Message(PORT, number, "Loans at 3.1%", "api", tenant="acme"), LOG)

    print(f"{count} checks per path; {CONCURRENCY} concurrent for the rate")
    print(f"{'in process: Gate.check, a call (baseline)':44} {await _measure(call, numbers, [call] * CONCURRENCY)}")
    print(f"{'in process: MessageService.handle':44} {await _measure(message, numbers, [message] * CONCURRENCY)}")
    await bench_http(gate, ledger, service, store, numbers)
    await bench_smpp(service, numbers)
    await bench_chatplan(service, numbers)
    await audit.close(timeout=30)
    await ledger.close()
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args.messages, tmp))
