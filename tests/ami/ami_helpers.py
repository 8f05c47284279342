"""A fake Asterisk manager on 127.0.0.1 that replays the recorded Asterisk 22 AMI session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dncgate.ami.message import AmiMessage
from dncgate.events import CallRecord

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
TRANSCRIPT = FIXTURES / "ami-session.log"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"

# The two calls of the recorded session, as the tracker must publish them.
REJECTED = CallRecord(
    switch="asterisk",
    call_id="1795809201.22",
    originator="15551230000",
    account="",
    callee="18005550100",
    start=datetime(2026, 11, 27, 19, 53, 21, tzinfo=UTC),
    answer=None,
    end=datetime(2026, 11, 27, 19, 53, 26, tzinfo=UTC),
    billsec=0,
    hangup_cause=21,
    hangup_cause_name="CALL_REJECTED",
    sip_code=603,
)
COMPLETED = CallRecord(
    switch="asterisk",
    call_id="1795809207.23",
    originator="15551230000",
    account="",
    callee="18005550123",
    start=datetime(2026, 11, 27, 19, 53, 27, tzinfo=UTC),
    answer=datetime(2026, 11, 27, 19, 53, 28, tzinfo=UTC),
    end=datetime(2026, 11, 27, 19, 53, 29, tzinfo=UTC),
    billsec=1,
    hangup_cause=16,
    hangup_cause_name="NORMAL_CLEARING",
    sip_code=None,
)


def transcript_parts() -> tuple[bytes, bytes]:
    """(the Login action as recorded, every byte Asterisk sent after its Login response)."""
    data = TRANSCRIPT.read_bytes()
    sent_marker = b"### SENT:\r\n"
    _, login_and_reply, _logoff = data.split(sent_marker)
    login, _, received = login_and_reply.partition(b"\r\n\r\n")
    assert received.startswith(BANNER)
    _login_response, _, events = received[len(BANNER) :].partition(b"\r\n\r\n")
    return login + b"\r\n\r\n", events


def transcript_events() -> list[AmiMessage]:
    """The recorded events as messages (a plain parser, independent of panoramisk's)."""
    _, events = transcript_parts()
    out = []
    for block in events.decode().split("\r\n\r\n"):
        if block.strip():
            lines = block.split("\r\n")
            pairs = [(line.partition(": ")[0].rstrip(":"), line.partition(": ")[2]) for line in lines]
            out.append(AmiMessage.from_pairs(pairs))
    return out


def event_bytes(name: str, **headers: str) -> bytes:
    lines = [f"Event: {name}", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_action(block: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.decode().split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            fields[key] = value
    return fields


Responder = Callable[["FakeAmi", dict[str, str]], bytes | None]


@dataclass
class FakeAmi:
    username: str = "e2e"
    secret: str = "e2epass"
    after_login: bytes = b""  # sent right after a successful Login response
    responder: Responder | None = None  # non-Login actions; None return = stay silent
    refuse_connections: int = 0  # close this many connections at once, before any byte
    silent_login: bool = False  # never answer Login
    port: int = 0
    actions: list[dict[str, str]] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._writers.append(writer)
        try:
            if self.connections <= self.refuse_connections:
                return
            writer.write(BANNER)
            while True:
                try:
                    block = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                action = parse_action(block)
                self.actions.append(action)
                reply = self._reply(action)
                if reply is None:
                    continue
                writer.write(reply)
                await writer.drain()
                if action.get("Action") == "Login" and b"Response: Error" in reply:
                    return  # Asterisk closes the session after a refused Login
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _reply(self, action: dict[str, str]) -> bytes | None:
        action_id = action.get("ActionID", "")
        if action.get("Action") == "Login":
            if self.silent_login:
                return None
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                return (
                    f"Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted\r\n\r\n".encode()
                    + self.after_login
                )
            return f"Response: Error\r\nActionID: {action_id}\r\nMessage: Authentication failed\r\n\r\n".encode()
        if self.responder is not None:
            return self.responder(self, action)
        if action.get("Action") == "Ping":
            return f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\nTimestamp: 1.0\r\n\r\n".encode()
        return None

    def send(self, data: bytes) -> None:
        """Write to every open connection (an unprompted event)."""
        for writer in self._writers:
            if not writer.is_closing():
                writer.write(data)

    def drop(self) -> None:
        """Close every open connection, as a restarting Asterisk would."""
        for writer in self._writers:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


class RecordingBackoff:
    def __init__(self, delays: list[float] | None = None) -> None:
        self.attempts: list[int] = []
        self._delays = delays

    def delay(self, attempt: int) -> float:
        self.attempts.append(attempt)
        return 0.0 if self._delays is None else self._delays[min(attempt, len(self._delays) - 1)]


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)
        await asyncio.sleep(0)


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polls state of the code under test, which has no hook
            await asyncio.sleep(0.005)
