"""Redis-specific behaviour: intset blocks, the choice of k, versions, swaps and cleanup."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from dncgate.store.redis import RedisListStore, RedisSettings
from dncgate.store.redis.keys import ListKeys, now_ms, tag
from tests.conftest import RedisServer
from tests.polls import poll_until

NATIONAL = ListKeys.of("national")


class GatedSleep:
    """The store's sleep for ``retire_grace``: records what it was asked, returns when released.
    The grace logic runs on it and on ``ClockMs``, never on the machine's speed (issue 11 item 20)."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.release = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.asked.append(delay)
        await self.release.wait()


class ClockMs:
    """The store's wall clock in ms (heartbeats, retirements): stands still until moved."""

    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


async def asked_to_wait(sleep: GatedSleep) -> list[float]:
    await poll_until(lambda: bool(sleep.asked), "the retirement waiting out its grace")
    return sleep.asked


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    redis_server.flush()
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_server: RedisServer, raw: aioredis.Redis) -> AsyncIterator[RedisListStore]:
    backend = await RedisListStore.connect(RedisSettings(url=redis_server.url, retire_grace=0.2))
    yield backend
    await backend.close()


async def _pointer(raw: aioredis.Redis, keys: ListKeys = NATIONAL) -> dict[str, object]:
    value = await raw.get(keys.pointer)
    assert value is not None
    data: dict[str, object] = json.loads(value)
    return data


async def _version_keys(raw: aioredis.Redis, version: str) -> list[bytes]:
    return [key async for key in raw.scan_iter(match=f"dnc:{{national}}:v{version}:*")]


def _operator_numbers(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    return sorted({8613800000000 + rng.randrange(2 * 10**6) for _ in range(count)})


async def test_blocks_are_intsets_after_a_load(store: RedisListStore, raw: aioredis.Redis) -> None:
    numbers = _operator_numbers(1, 200_000)
    result = await store.replace_list("national", numbers)
    pointer = await _pointer(raw)
    assert pointer["version"] == result.version
    assert pointer["count"] == len(numbers)
    k = int(str(pointer["k"]))
    blocks = {n // 10**k for n in numbers}
    for block in list(blocks)[:20]:
        key = NATIONAL.block(result.version, block)
        assert await raw.object("encoding", key) == b"intset"
    assert await raw.scard(NATIONAL.blocks(result.version)) == len(blocks)
    assert sum([await raw.scard(NATIONAL.block(result.version, b)) for b in blocks]) == len(numbers)


async def test_k_follows_density(store: RedisListStore, raw: aioredis.Redis) -> None:
    await store.replace_list("national", _operator_numbers(2, 200_000))
    dense_k = (await _pointer(raw))["k"]
    rng = random.Random(3)
    await store.replace_list("national", {86_000_000_000 + rng.randrange(10**12) for _ in range(5_000)})
    sparse_k = (await _pointer(raw))["k"]
    assert dense_k == 4
    assert sparse_k == 7


async def test_low_intset_limit_warns_and_shrinks_blocks(
    store: RedisListStore, raw: aioredis.Redis
) -> None:
    await raw.config_set("set-max-intset-entries", 512)
    try:
        with capture_logs() as logs:
            await store.replace_list("national", range(8613800000000, 8613800000000 + 50_000))
        events = [entry["log_level"] + " " + entry["event"] for entry in logs]
        assert "warning store.redis.intset_limit_low" in events
        # Every number of 10^3-blocks: 1000 > 512, so Redis converts them; the sample notices.
        assert "warning store.redis.block_not_intset" in events
        assert (await _pointer(raw))["k"] == 3
        assert (await store.facts("t", 8613800000000 + 49_999)).national is not None
    finally:
        await raw.config_set("set-max-intset-entries", 1_000_000)


async def test_old_version_is_freed_after_the_grace_period(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    grace = GatedSleep()
    store = await RedisListStore.connect(RedisSettings(url=redis_server.url, retire_grace=0.2), sleep=grace)
    try:
        first = await store.replace_list("national", _operator_numbers(4, 5_000))
        assert await _version_keys(raw, first.version)
        second = await store.replace_list("national", _operator_numbers(5, 5_000))
        # Still there during the grace period: a lookup in flight may be reading it.
        assert await asked_to_wait(grace) == [0.2]
        assert await _version_keys(raw, first.version)
        grace.release.set()  # the grace period is over
        await store.drain_cleanup()
        assert await _version_keys(raw, first.version) == []
        assert await raw.hkeys(NATIONAL.versions) == [second.version.encode()]
        assert await _version_keys(raw, second.version)
    finally:
        await store.close()


async def test_cleanup_left_by_close_is_done_by_the_next_load(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    settings = RedisSettings(url=redis_server.url, retire_grace=0.1)
    clock, grace = ClockMs(), GatedSleep()
    store = await RedisListStore.connect(settings, clock_ms=clock, sleep=grace)
    first = await store.replace_list("national", [8613800138000])
    await store.replace_list("national", [8613800138001])
    await asked_to_wait(grace)
    await store.close()  # before the grace period is over: the free is deferred
    assert await _version_keys(raw, first.version)
    clock.now += 101  # the grace period is over
    store = await RedisListStore.connect(settings, clock_ms=clock)
    try:
        await store.replace_list("tenant:acme", [1])  # another list: leaves national alone
        assert await _version_keys(raw, first.version)
        assert await store.collect_garbage("national") == [first.version]
        assert await _version_keys(raw, first.version) == []
    finally:
        await store.close()


async def test_failed_load_leaves_old_version_serving(store: RedisListStore, raw: aioredis.Redis) -> None:
    old = await store.replace_list("national", [8613800138000])

    def explode(loaded: int) -> None:
        raise RuntimeError(f"killed after {loaded}")

    numbers = _operator_numbers(6, 300_000)
    with pytest.raises(RuntimeError, match="killed"):
        await store.replace_list("national", numbers, progress=explode)
    facts = await store.facts("t", 8613800138000)
    assert facts.national is not None
    assert facts.national_version == old.version
    leftovers = [v for v in await raw.hkeys(NATIONAL.versions) if v.decode() != old.version]
    assert len(leftovers) == 1
    assert await _version_keys(raw, leftovers[0].decode())
    new = await store.replace_list("national", [8613800138001])
    assert await _version_keys(raw, leftovers[0].decode()) == []
    assert new.previous_version == old.version


class ProcessKilled(BaseException):
    pass


async def test_killed_load_is_freed_once_its_heartbeat_is_stale(
    redis_server: RedisServer, raw: aioredis.Redis
) -> None:
    settings = RedisSettings(url=redis_server.url, abandoned_after=0.3, load_batch=10_000, retire_grace=0)
    clock = ClockMs()
    store = await RedisListStore.connect(settings, clock_ms=clock)
    try:
        old = await store.replace_list("national", [8613800138000])

        def kill(loaded: int) -> None:
            raise ProcessKilled(loaded)

        # A killed process runs no clean-up (a BaseException skips the store's best-effort marking).
        with pytest.raises(ProcessKilled):
            await store.replace_list("national", _operator_numbers(7, 200_000), progress=kill)
        snapshot = await raw.hgetall(NATIONAL.versions)
        building = [v.decode() for v, s in snapshot.items() if s.startswith(b"building:")]
        assert len(building) == 1
        assert (await store.facts("t", 8613800138000)).national_version == old.version
        # A concurrent build that is still alive is left alone ...
        assert await store.collect_garbage("national") == []
        clock.now += 301
        # ... until its heartbeat is older than abandoned_after.
        assert await store.collect_garbage("national") == building
        assert await _version_keys(raw, building[0]) == []
    finally:
        await store.close()


async def test_lookups_see_a_swap_made_by_another_process(
    redis_server: RedisServer, store: RedisListStore
) -> None:
    await store.replace_list("national", [8613800138000])
    assert (await store.facts("t", 8613800138000)).national is not None
    other = await RedisListStore.connect(RedisSettings(url=redis_server.url, retire_grace=0))
    try:
        swapped = await other.replace_list("national", [8613800138001])
        await other.drain_cleanup()
    finally:
        await other.close()
    # The cached version is gone; the pointer read back tells, and the lookup is redone.
    facts = await store.facts("t", 8613800138001)
    assert facts.national is not None
    assert facts.national.version == swapped.version
    assert (await store.facts("t", 8613800138000)).national is None


async def test_add_numbers_use_the_live_versions_blocks(store: RedisListStore, raw: aioredis.Redis) -> None:
    numbers = _operator_numbers(8, 10_000)
    result = await store.replace_list("tenant:acme", numbers)
    keys = ListKeys.of("tenant:acme")
    assert await store.add_numbers("tenant:acme", [8613900000001, 8613900000002]) == 2
    assert await raw.get(keys.count(result.version)) == str(len(numbers) + 2).encode()
    k = int(str((await _pointer(raw, keys))["k"]))
    assert await raw.sismember(keys.block(result.version, 8613900000001 // 10**k), 8613900000001 % 10**k)
    assert await store.remove_numbers("tenant:acme", [8613900000001]) == 1
    stats = {s.list_name: s for s in await store.stats()}
    assert stats["tenant:acme"].count == len(numbers) + 1
    assert "blocks of 10^" in stats["tenant:acme"].detail


async def test_an_edit_racing_a_swap_lands_in_the_new_live_version(
    store: RedisListStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.replace_list("tenant:acme", _operator_numbers(9, 1_000))
    loader = store._loader
    real_edit_version = loader._edit_version
    swapped: list[str] = []

    async def edit_then_swap(*args: object, **kwargs: bool) -> int:
        changed = await real_edit_version(*args, **kwargs)  # type: ignore[arg-type]
        if not swapped:  # a full snapshot becomes live while the edit was being written
            swapped.append((await store.replace_list("tenant:acme", _operator_numbers(10, 1_000))).version)
        return changed

    monkeypatch.setattr(loader, "_edit_version", edit_then_swap)
    assert await store.add_numbers("tenant:acme", [8613900000007]) == 1
    facts = await store.facts("acme", 8613900000007)
    assert facts.tenant_list is not None
    assert facts.tenant_list.version == swapped[0]  # in the list that is live now, not only the retired one


async def test_every_key_of_a_list_shares_its_hash_tag(store: RedisListStore, raw: aioredis.Redis) -> None:
    await store.replace_list("tenant:acme", _operator_numbers(9, 1000))
    await store.set_prefix_rule("tenant:acme", "86170")
    await store.replace_list("tenant:acme", _operator_numbers(10, 1000))
    keys = [key.decode() async for key in raw.scan_iter(match="dnc:*")]
    assert tag("tenant:acme") == "dnc:{t:acme}"
    for key in keys:
        assert key == "dnc:lists" or key.startswith(("dnc:{t:acme}:", "dnc:{national}:")), key


async def test_audit_stream_is_capped(redis_server: RedisServer, raw: aioredis.Redis) -> None:
    from tests.store.test_contract import _record

    store = await RedisListStore.connect(RedisSettings(url=redis_server.url, audit_maxlen=10, audit_page=7))
    try:
        for i in range(0, 300, 50):
            await store.append_audit([_record(j % 60) for j in range(i, i + 50)])
        assert await raw.xlen("dnc:{audit}") < 300
        exported = [r async for r in store.audit_export()]
        assert len(exported) == await raw.xlen("dnc:{audit}")
        assert exported[-1].decision_id == "d59"
        await raw.xadd("dnc:{audit}", {"r": "not json"})
        from dncgate.store.errors import StoreCorrupt

        with pytest.raises(StoreCorrupt):
            await store.audit_tail(1)
    finally:
        await store.close()


async def test_cancelled_lookups_do_not_shift_replies(store: RedisListStore) -> None:
    listed = list(range(8613800000000, 8613800000000 + 2000, 2))
    await store.replace_list("national", listed)
    await store.facts("t", listed[0])  # warm the pointer cache

    async def check(number: int) -> bool:
        return (await store.facts("t", number)).national is not None

    tasks = [asyncio.create_task(check(n)) for n in range(8613800000000, 8613800000000 + 600)]
    await asyncio.sleep(0)
    for task in tasks[::3]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for offset, result in enumerate(results):
        if not isinstance(result, asyncio.CancelledError):
            assert result is (offset % 2 == 0), offset
    assert await check(listed[-1])
    assert not await check(listed[-1] + 1)
