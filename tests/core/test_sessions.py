"""The session server both doors share: allowlist, total and per-peer caps, refusals, bounded close.

Loopback only: 127.0.0.2 (a client socket bound to it) is "another peer" than 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs

from dncgate.sessions import LOOPBACK, Peer, ServerLimits, SessionServer, is_loopback_host

Logs = list[MutableMapping[str, Any]]
OTHER = "127.0.0.2"


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Door:
    """A door whose sessions say hello, then wait until released (or until the peer goes)."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: list[str] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> str:
        self.started.append(peer.address)
        try:
            writer.write(b"hello\n")
            await writer.drain()
            await self.release.wait()
            return "ok"
        finally:
            writer.close()

    async def refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer,
                     reason: str) -> None:
        self.refusals.append((peer.address, reason))
        writer.write(b"busy\n")
        writer.close()


@pytest.fixture
def logs() -> Iterator[Logs]:
    with capture_logs() as captured:
        yield captured


@contextlib.asynccontextmanager
async def serving(door: Door, limits: ServerLimits, clock: Clock | None = None,
                  *, refuse: bool = False) -> AsyncIterator[SessionServer]:
    server = SessionServer("test", door.run, host="127.0.0.1", port=0, limits=limits,
                           refuse=door.refuse if refuse else None, clock=clock or Clock())
    await server.start()
    try:
        yield server
    finally:
        door.release.set()
        await server.close(timeout=1.0)


async def dial(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def first_line(reader: asyncio.StreamReader) -> bytes:
    """The first line the server sends, or b"" when it closes (a reset counts as closed)."""
    try:
        return await asyncio.wait_for(reader.readline(), 30)
    except ConnectionResetError:
        return b""


def refused(logs: Logs) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "door.server.session_refused"]


async def test_a_peer_outside_allow_is_closed_at_once_and_logged_once_per_interval(logs: Logs) -> None:
    door, clock = Door(), Clock()
    limits = ServerLimits(allow=("127.0.0.1/32",), refusal_log_interval=60.0)
    async with serving(door, limits, clock, refuse=True) as server:
        for _ in range(3):
            reader, writer = await dial(server.port, OTHER)
            assert await first_line(reader) == b""  # no session, and not the door's refusal either
            writer.close()
        clock.now += 60.0
        reader, writer = await dial(server.port, OTHER)
        assert await first_line(reader) == b""
        writer.close()
        reader, writer = await dial(server.port)  # 127.0.0.1 is allowed
        assert await first_line(reader) == b"hello\n"
        writer.close()
        assert server.refused == 4
        assert server.refused_by == {"not_allowed": 4}
    assert door.started == ["127.0.0.1"]
    assert door.refusals == []  # a peer we do not trust gets nothing from the door
    lines = refused(logs)
    assert [(e["reason"], e["suppressed"], e["door"]) for e in lines] == [
        ("not_allowed", 0, "test"), ("not_allowed", 2, "test"),
    ]
    assert all(e["remote"].startswith(f"{OTHER}:") and e["log_level"] == "warning" for e in lines)


async def test_one_peer_cannot_hold_every_session(logs: Logs) -> None:
    door = Door()
    async with serving(door, ServerLimits(max_sessions=4, max_sessions_per_peer=2)) as server:
        held = [await dial(server.port, OTHER) for _ in range(2)]
        for reader, _ in held:
            assert await first_line(reader) == b"hello\n"
        reader, writer = await dial(server.port, OTHER)
        assert await first_line(reader) == b""  # its third session: refused
        writer.close()
        assert server.sessions_of(OTHER) == 2
        others = [await dial(server.port) for _ in range(2)]  # another peer still gets the rest
        for r, _ in others:
            assert await first_line(r) == b"hello\n"
        assert server.active_sessions == 4
        reader, writer = await dial(server.port)
        assert await first_line(reader) == b""  # now the total cap
        writer.close()
        assert server.refused_by == {"max_sessions_per_peer": 1, "max_sessions": 1}
        for _, w in held + others:
            w.close()
    assert server.accepted == 4
    assert server.outcomes == {"ok": 4}
    assert server.sessions_of(OTHER) == 0
    assert [(e["reason"], e["peer_sessions"]) for e in refused(logs)] == [
        ("max_sessions_per_peer", 2), ("max_sessions", 2),
    ]


async def test_an_allowed_peer_over_a_cap_gets_the_doors_refusal(logs: Logs) -> None:
    door = Door()
    async with serving(door, ServerLimits(max_sessions=1), refuse=True) as server:
        reader, writer = await dial(server.port)
        assert await first_line(reader) == b"hello\n"
        extra_reader, extra_writer = await dial(server.port)
        assert await first_line(extra_reader) == b"busy\n"
        extra_writer.close()
        writer.close()
    assert door.refusals == [("127.0.0.1", "max_sessions")]
    assert server.outcomes == {"ok": 1}  # a refusal is not a session


async def test_close_cancels_after_the_grace_and_abandons_what_ignores_cancellation(logs: Logs) -> None:
    entered = asyncio.Event()

    async def stubborn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> str:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # ignores the server's cancel...
            await asyncio.Event().wait()
        await asyncio.Event().wait()  # ...but not the test's
        return "unreachable"

    server = SessionServer("test", stubborn, host="127.0.0.1", port=0,
                           limits=ServerLimits(cancel_timeout=0.05))
    await server.start()
    reader, writer = await dial(server.port)
    await asyncio.wait_for(entered.wait(), 30)
    await server.close(timeout=0.05)
    assert await first_line(reader) == b""  # its socket was aborted
    writer.close()
    names = [e["event"] for e in logs if e["event"].startswith("door.server.")]
    assert names == ["door.server.started", "door.server.closing", "door.server.sessions_cancelled",
                     "door.server.sessions_abandoned", "door.server.closed"]
    (task,) = [t for t in asyncio.all_tasks() if t.get_name().startswith("test-session-")]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_default_allow_is_loopback_only() -> None:
    limits = ServerLimits()
    assert limits.allow == LOOPBACK == ("127.0.0.0/8", "::1/128")
    assert [limits.allows(a) for a in ("127.0.0.1", "127.0.0.2", "::1", "10.0.0.1", "::2", "", "x")] == [
        True, True, True, False, False, False, False,
    ]
    assert ServerLimits(allow=("10.1.2.3", "192.0.2.0/24")).allow == ("10.1.2.3/32", "192.0.2.0/24")
    assert ServerLimits(allow=("0.0.0.0/0",)).allows("203.0.113.9")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allow": ("10.0.0.5/24",)}, "'10.0.0.5/24' is not a network or address"),
        ({"allow": ("localhost",)}, "'localhost' is not a network or address"),
        ({"allow": "127.0.0.1"}, "a list of networks, not one string"),
        ({"max_sessions_per_peer": 0}, "max_sessions_per_peer must be >= 1"),
        ({"cancel_timeout": 0.0}, "cancel_timeout must be > 0"),
    ],
)
def test_bad_limits_are_refused_with_the_field_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerLimits(**kwargs)



def test_a_loopback_allowlist_on_a_wider_listen_address_is_detected() -> None:
    """serve warns (door.server.loopback_only) when a door listens beyond loopback but allows only it."""
    assert ServerLimits().loopback_only
    assert not ServerLimits(allow=("127.0.0.0/8", "192.0.2.0/24")).loopback_only
    hosts = ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::", "", "gate.lan")  # noqa: S104 - names, never bound
    assert [is_loopback_host(h) for h in hosts] == [True, True, True, False, False, False, False]
