"""Helpers shared by the ESL tests: fixture paths and transcript segmentation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "esl"
CHAT_FIXTURES = FIXTURES.parent / "esl_chat"  # chatplan (mod_sms) sessions on the inbound socket

_BLOCK = re.compile(rb"^=====\s+([0-9.]+) (>>> SENT to|<<< RECEIVED from) FreeSWITCH \((\d+) bytes\) =====\n", re.M)


@dataclass(frozen=True)
class Step:
    direction: Literal["tx", "rx"]  # tx = the client sent it, rx = FreeSWITCH sent it
    data: bytes


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def transcript_steps(name: str, fixtures: Path = FIXTURES) -> list[Step]:
    """Split an annotated ``*.txt`` transcript (in ``fixtures``) into its exact byte blocks, in order."""
    text = (fixtures / f"{name}.txt").read_bytes()
    steps: list[Step] = []
    pos = 0
    while True:
        m = _BLOCK.search(text, pos)
        if m is None:
            return steps
        size = int(m.group(3))
        start = m.end()
        steps.append(Step("tx" if m.group(2).startswith(b">>>") else "rx", text[start : start + size]))
        pos = start + size


TRANSCRIPTS = [
    "inbound_8021",
    "outbound_1_5550001",
    "outbound_1_5559999",
    "outbound_1_85551003",
    "outbound_2_5550002",
    "outbound_2_85550001",
    "outbound_3_5550003",
    "outbound_4_5551000",
    "outbound_5_5551001",
]
CHAT_TRANSCRIPTS = ["gate_chatplan_final", "gate_chatplan_stop", "inbound_chat_json", "inbound_chat_plain"]


async def replay_as_freeswitch(port: int, steps: list[Step], *, io_deadline: float = 5.0) -> bytes:
    """Dial the outbound server like FreeSWITCH would and play ``steps``.

    rx steps are written verbatim; for tx steps we read exactly that many bytes
    from the server.  Afterwards we read until the server closes the socket.
    Returns every byte the server sent, for comparison with ``*.tx.raw``.
    """
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    try:
        async with asyncio.timeout(io_deadline):
            for step in steps:
                if step.direction == "rx":
                    writer.write(step.data)
                    await writer.drain()
                else:
                    received += await reader.readexactly(len(step.data))
            received += await reader.read()  # until EOF: the server must close
    finally:
        writer.close()
    return bytes(received)


def uuid_sequence(*values: str):  # type: ignore[no-untyped-def]
    it = iter(values)
    return lambda: next(it)
