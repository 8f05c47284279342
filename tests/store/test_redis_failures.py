"""Redis that stalls, dies, comes back, or hides CONFIG: the store fails fast and recovers alone."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from dncgate.store.errors import StoreUnavailable
from dncgate.store.redis import RedisListStore, RedisSettings
from dncgate.store.redis.conn import make_client
from tests.conftest import RedisServer, free_port

CN_MOBILE = 8613800138000
# A hang guard, not a speed target (issue 11 item 20): without its deadline a lookup on a silent
# server waits forever. What proves the store gave up is the error naming its deadline (the
# lookup deadline or the socket timeout), never the time it took.
HANG_GUARD = 60.0
GAVE_UP = r"no answer within|[Tt]imeout"


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    yield port
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_stalled_server_fails_within_a_second(silent_port: int) -> None:
    settings = RedisSettings(url=f"redis://127.0.0.1:{silent_port}/0")
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(StoreUnavailable, match=GAVE_UP):
            await RedisListStore.connect(settings)
    # A store whose server stalls after start-up: every lookup gives up fast, nothing raw escapes.
    store = RedisListStore(settings, make_client(settings), make_client(settings, admin=True))
    try:
        for _ in range(3):
            async with asyncio.timeout(HANG_GUARD):
                with pytest.raises(StoreUnavailable, match=GAVE_UP):
                    await store.facts("acme", CN_MOBILE)
    finally:
        await store.close()


async def answers_again(store: RedisListStore) -> bool:
    """The store answers a lookup again (a bounded number of tries: its connection recovers)."""
    for _ in range(50):
        with contextlib.suppress(StoreUnavailable):
            return (await store.facts("acme", CN_MOBILE)).national is not None
        await asyncio.sleep(0.05)
    return False


async def test_paused_redis_fails_fast_then_answers_again(redis_server: RedisServer) -> None:
    redis_server.flush()
    store = await RedisListStore.connect(RedisSettings(url=redis_server.url))
    assert redis_server.process is not None
    try:
        await store.replace_list("national", [CN_MOBILE])
        assert (await store.facts("acme", CN_MOBILE)).national is not None
        # Paused (SIGSTOP) until this test resumes it: the pause is ended, never waited out.
        redis_server.process.send_signal(signal.SIGSTOP)
        async with asyncio.timeout(HANG_GUARD):
            with pytest.raises(StoreUnavailable, match=GAVE_UP):  # gave up, did not wait for the server
                await store.facts("acme", CN_MOBILE)
        redis_server.process.send_signal(signal.SIGCONT)
        assert await answers_again(store), "the store did not recover after the pause ended"
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
        await store.close()


async def test_redis_restart_is_survived(tmp_path: Path) -> None:
    server = RedisServer("127.0.0.1", free_port(), tmp_path)
    server.start()
    store = await RedisListStore.connect(RedisSettings(url=server.url))
    try:
        await store.replace_list("national", [CN_MOBILE])
        assert (await store.facts("acme", CN_MOBILE)).national is not None
        server.stop()
        for _ in range(3):  # the server is gone: refused at once, a typed error each time
            async with asyncio.timeout(HANG_GUARD):
                with pytest.raises(StoreUnavailable, match="Connect call failed"):  # refused, not timed out
                    await store.facts("acme", CN_MOBILE)
        with pytest.raises(StoreUnavailable):
            await store.ping()
        # A new, empty redis-server on the same port: the store reconnects by itself.
        server.start()
        facts = await store.facts("acme", CN_MOBILE)
        assert facts.national is None
        assert facts.national_version == ""
        result = await store.replace_list("national", [CN_MOBILE])
        facts = await store.facts("acme", CN_MOBILE)
        assert facts.national is not None
        assert facts.national.version == result.version
    finally:
        await store.close()
        server.stop()


async def test_disabled_config_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    server = RedisServer("127.0.0.1", free_port(), tmp_path)
    server.start()
    admin = aioredis.Redis.from_url(server.url)
    try:
        # Managed Redis services often refuse CONFIG; an ACL user without it behaves the same.
        await admin.execute_command("ACL", "SETUSER", "gate", "on", ">pw", "~*", "&*", "+@all", "-config")
        url = f"redis://gate:pw@127.0.0.1:{server.port}/0"
        with capture_logs() as logs:
            store = await RedisListStore.connect(RedisSettings(url=url, intset_entries=1_000_000))
        try:
            assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["store.redis.config_unavailable"]
            assert store.intset_entries == 1_000_000
            await store.replace_list("national", [CN_MOBILE])
            assert (await store.facts("acme", CN_MOBILE)).national is not None
        finally:
            await store.close()
    finally:
        await admin.aclose()
        server.stop()


async def test_wrong_type_is_corrupt_and_bad_pointer_too(redis_server: RedisServer) -> None:
    from dncgate.store.errors import StoreCorrupt

    redis_server.flush()
    store = await RedisListStore.connect(RedisSettings(url=redis_server.url))
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.set("dnc:{national}:ptr", "not json")
        with pytest.raises(StoreCorrupt):
            await store.facts("acme", CN_MOBILE)
        await admin.delete("dnc:{national}:ptr")
        await admin.set("dnc:{national}:rules", "a string")
        with pytest.raises(StoreCorrupt):
            await store.facts("acme", CN_MOBILE)
    finally:
        await admin.aclose()
        await store.close()
