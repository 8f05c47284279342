"""The lookup channel against a real redis-server: replies reach their callers, sends are shared."""

from __future__ import annotations

import asyncio

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from dncgate.store.redis.mux import Multiplexer, pack
from tests.conftest import RedisServer


def channel(redis_server: RedisServer) -> Multiplexer:
    return Multiplexer(redis_server.url, connect_timeout=1.0, reply_timeout=1.0, retry=Retry(NoBackoff(), 0),
                       client_name="dncgate-test")


class CountingWrites:
    """Counts the channel's transport writes (each one is a send to Redis)."""

    def __init__(self, mux: Multiplexer) -> None:
        transport = mux._transport
        assert transport is not None
        self.writes: list[bytes] = []
        original = transport.write

        def write(data: bytes | bytearray | memoryview) -> None:
            self.writes.append(bytes(data))
            original(data)

        transport.write = write  # type: ignore[method-assign]


async def test_an_idle_channel_sends_at_once(redis_server: RedisServer) -> None:
    mux = channel(redis_server)
    try:
        assert await mux.execute(pack(("ECHO", "warm")), 1) == [b"warm"]
        counter = CountingWrites(mux)
        pending = asyncio.ensure_future(mux.execute(pack(("ECHO", "a")), 1))
        await asyncio.sleep(0)  # the task starts and must have written before it waits
        assert counter.writes == [pack(("ECHO", "a"))]
        assert await pending == [b"a"]
    finally:
        await mux.close()


async def test_concurrent_lookups_share_sends_and_each_gets_its_own_replies(redis_server: RedisServer) -> None:
    mux = channel(redis_server)
    try:
        await mux.execute(pack(("ECHO", "warm")), 1)
        counter = CountingWrites(mux)
        calls = [mux.execute(pack(("ECHO", f"{i}"), ("ECHO", f"{i}-2")), 2) for i in range(300)]
        replies = await asyncio.gather(*calls)
        assert replies == [[f"{i}".encode(), f"{i}-2".encode()] for i in range(300)]
        # the first goes out alone, the rest (started while it was in flight) in one send
        assert len(counter.writes) == 2
        assert b"".join(counter.writes) == b"".join(pack(("ECHO", f"{i}"), ("ECHO", f"{i}-2")) for i in range(300))
    finally:
        await mux.close()
