"""Replaying what a real FreeSWITCH 1.11.1 sent on the inbound event socket for chatplan (mod_sms)
messages (``tests/fixtures/esl_chat/``, README there): the ``*.raw`` streams cut into frames, and a
peer that plays them to the gate's chatplan client (as ``dncgate serve`` runs it), answering each
command only once the gate has sent it, and recording every byte the gate sends."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from dncgate.backoff import Backoff
from dncgate.esl.codec import decode_event
from dncgate.esl.inbound import InboundClient, InboundConfig
from dncgate.esl.messages import Event, EventFormat
from dncgate.messages.chatplan import ChatplanDoor, run_chatplan
from tests.messages.conftest import Lab

CHAT = Path(__file__).resolve().parents[1] / "fixtures" / "esl_chat"
_REPLY_TYPES = (b"command/reply", b"api/response")
_EVENT_UUID_REPLY = re.compile(rb"^Reply-Text: \+OK [0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.M)


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\n"):
        if line.startswith(name + b": "):
            return line[len(name) + 2:]
    return None


def split_frames(stream: bytes) -> list[bytes]:
    """An event-socket byte stream (either direction) cut into its frames: headers, blank line, body."""
    frames, pos = [], 0
    while pos < len(stream):
        end = stream.index(b"\n\n", pos) + 2
        end += int(_header(stream[pos:end], b"Content-Length") or 0)
        frames.append(stream[pos:end])
        pos = end
    return frames


def content_type(frame: bytes) -> bytes:
    return _header(frame.split(b"\n\n", 1)[0], b"Content-Type") or b""


def event_of(frame: bytes) -> Event:
    """A recorded event frame read by the gate's own decoder, as its client reads the socket."""
    return decode_event(content_type(frame).decode(), frame.split(b"\n\n", 1)[1])


@dataclass(frozen=True)
class Recording:
    """One recorded session: ``rx`` what FreeSWITCH sent, ``tx`` what the client sent, frame by frame."""

    name: str
    rx: tuple[bytes, ...]
    tx: tuple[bytes, ...]

    @classmethod
    def load(cls, name: str) -> Recording:
        return cls(name, *(tuple(split_frames((CHAT / f"{name}.{d}.raw").read_bytes())) for d in ("rx", "tx")))

    def handshake(self) -> list[bytes]:
        """auth/request and FreeSWITCH's replies to the client's first two commands: ``auth`` and
        its first ``event`` subscription (the gate's only one)."""
        return list(self.rx[:3])

    def messages(self) -> list[list[bytes]]:
        """Each SIP MESSAGE's event frames in order: the chatplan's ``fire``, then the core's
        after-delivery copy (one Event-Sequence)."""
        groups: dict[str, list[bytes]] = {}
        for frame in self.rx:
            if b"\nEvent-Name: MESSAGE\n" in frame or b'{"Event-Name":"MESSAGE",' in frame:
                groups.setdefault(event_of(frame).get("Event-Sequence") or "", []).append(frame)
        return list(groups.values())

    def sendevent_reply(self) -> bytes:
        """FreeSWITCH's first reply to a client's ``sendevent`` (``+OK <event uuid>``)."""
        return next(f for f in self.rx if _EVENT_UUID_REPLY.search(f))

    def goodbye(self) -> bytes:
        [notice] = [f for f in self.rx if content_type(f) == b"text/disconnect-notice"]
        return notice


@dataclass
class RecordedFreeswitch:
    """One ``script`` per connection the gate makes: its frames written in order; before each
    command reply the gate's next command is read into ``sent``; after the last frame, whatever the
    gate sends until it closes (it closes after the disconnect-notice, once every event before it
    is handled). A connection beyond the scripts is closed at once."""

    scripts: list[list[bytes]]
    sent: list[bytes] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.connections <= len(self.scripts):
                with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                    await self._play(self.scripts[self.connections - 1], reader, writer)
        finally:
            if self.connections >= len(self.scripts):
                self.done.set()
            writer.close()

    async def _play(self, script: list[bytes], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for frame in script:
            if content_type(frame) in _REPLY_TYPES:
                self.sent.append(await _read_command(reader))
            writer.write(frame)
            await writer.drain()
        if rest := await reader.read(1 << 20):  # the gate sent more than the recording answers
            self.sent.append(rest)


async def _read_command(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\n\n")
    return head + await reader.readexactly(int(_header(head, b"Content-Length") or 0))


@contextlib.asynccontextmanager
async def replayed(lab: Lab, *scripts: list[bytes], event_format: EventFormat = "plain",
                   door: ChatplanDoor | None = None) -> AsyncIterator[RecordedFreeswitch]:
    """The gate's chatplan client connected to a :class:`RecordedFreeswitch` until every script is played."""
    peer = RecordedFreeswitch(list(scripts))
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    config = InboundConfig(port=server.sockets[0].getsockname()[1], events=("MESSAGE",), event_format=event_format)
    stop = asyncio.Event()
    door = door or ChatplanDoor(lab.service, tenant="acme")
    task = asyncio.create_task(run_chatplan(door, lambda: InboundClient(config), stop,
                                            backoff=Backoff(initial=0.01, maximum=0.05)))
    try:
        async with asyncio.timeout(10):
            await peer.done.wait()
        server.close()
        yield peer
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
