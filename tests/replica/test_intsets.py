"""Reading the store's blocks into the replica (dncgate.replica.intsets, RedisFollower._write): an intset's
DUMP gives exactly its members, or None when it is not a plain intset (LZF-compressed, a hashtable, not
a set, damaged), and then SMEMBERS does; the follower's file has the list's numbers either way, at every
block size; a file of an older format at the version's path is written again, not served."""

from __future__ import annotations

import random
from array import array
from pathlib import Path

import pytest
import structlog
from redis.asyncio import Redis

from dncgate.replica import intsets
from dncgate.replica.compact import CompactWriter
from dncgate.replica.follow import RedisFollower
from dncgate.settings import ReplicaSettings
from dncgate.store.redis import RedisListStore, RedisSettings
from tests.conftest import RedisServer


async def _dump(client: Redis, members: list[int]) -> bytes | None:
    await client.delete("s")
    await client.sadd("s", *members)
    return await client.dump("s")


async def test_a_plain_intset_is_read_from_its_dump(redis_server: RedisServer) -> None:
    redis_server.flush()
    client = Redis.from_url(redis_server.url)
    rng = random.Random(3)
    try:
        for members in ([5], [0, 9999], rng.sample(range(10_000), 3000), rng.sample(range(10_000), 30),
                        [0, 1, 2, 70_000]):
            found = intsets.members(await _dump(client, members), "I")
            assert found is not None
            assert found.tolist() == sorted(members)
            if max(members) < 2**16:
                small = intsets.members(await _dump(client, members), "H")
                assert small is not None
                assert small.typecode == "H"
                assert small.tolist() == sorted(members)
        assert intsets.members(await _dump(client, [1, 70_000]), "H") is None  # does not fit 16 bits
        assert intsets.members(await _dump(client, [-1, 5]), "I") is None  # negative: not a block's
        dense = list(range(0, 50_000))  # 32-bit members in a run: Redis compresses the blob (LZF)
        assert intsets.members(await _dump(client, dense), "I") is None
        assert intsets.from_members(await client.smembers("s"), "I").tolist() == dense
        await client.delete("s")
        await client.sadd("s", "a", "b")  # not an intset
        assert intsets.members(await client.dump("s"), "I") is None
        await client.set("s", "12")
        assert intsets.members(await client.dump("s"), "I") is None
    finally:
        await client.aclose()


async def test_a_damaged_or_foreign_payload_is_not_guessed_at(redis_server: RedisServer) -> None:
    redis_server.flush()
    client = Redis.from_url(redis_server.url)
    try:
        payload = await _dump(client, [3, 7, 11])
    finally:
        await client.aclose()
    assert payload is not None
    assert intsets.members(payload, "H") is not None
    for bad in (None, b"", payload[:1], payload[:-1], payload + b"\0", b"\x02" + payload[1:],
                payload[:2] + b"\x03" + payload[3:],  # the intset's encoding
                payload[:6] + b"\x09" + payload[7:]):  # its length
        assert intsets.members(bad, "H") is None, bad


def _numbers(k: int) -> list[int]:
    rng = random.Random(k)
    dense = list(range(8613800000000, 8613800000000 + 40_000))  # 32-bit blocks of these compress (LZF)
    return dense + sorted(rng.sample(range(12015550000, 12025550000), 20_000)) + [8613912345678]


@pytest.mark.parametrize("k", [3, 4, 5, 7])
async def test_the_replica_file_holds_the_list_at_every_block_size(redis_server: RedisServer, tmp_path: Path,
                                                                  k: int) -> None:
    redis_server.flush()
    numbers = _numbers(k)
    store = await RedisListStore.connect(RedisSettings(url=redis_server.url, block_k=(k,)))
    await store.replace_list("national", numbers)
    follower = RedisFollower(redis_server.url, ReplicaSettings(enabled=True, dir=tmp_path / "replica"), [])
    try:
        with structlog.testing.capture_logs() as logs:
            follower.start()
            await follower.wait_ready()
        compact = follower.lists["national"].compact
        assert compact is not None
        assert len(compact) == len(numbers)
        assert compact.span == 10**k
        assert compact.width == (16 if k <= 4 else 32)
        listed = set(numbers)
        probes = [n + d for n in random.Random(1).sample(numbers, 3000) for d in (-1, 0, 1)]
        assert [p in compact for p in probes] == [p in listed for p in probes]
        read = next(e for e in logs if e["event"] == "replica.blocks_read")
        assert read["blocks"] > 0
        if k <= 4:
            assert read["read_as_members"] == 0  # every block straight from its DUMP
        else:
            assert read["read_as_members"] > 0  # the dense 32-bit blocks are compressed: SMEMBERS
    finally:
        await follower.close()
        await store.close()


async def test_a_file_of_an_older_format_is_written_again(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.flush()
    store = await RedisListStore.connect(RedisSettings(url=redis_server.url))
    await store.replace_list("national", [12015550100, 12015550107])
    version = next(s for s in await store.stats() if s.list_name == "national").version
    directory = tmp_path / "replica"
    directory.mkdir()
    (directory / f"national-v{version}.dnc").write_bytes(b"DNCLIST1" + bytes(40))  # what 1.x wrote: not ours
    follower = RedisFollower(redis_server.url, ReplicaSettings(enabled=True, dir=directory), [])
    try:
        with structlog.testing.capture_logs() as logs:
            follower.start()
            await follower.wait_ready()
        compact = follower.lists["national"].compact
        assert compact is not None
        assert 12015550107 in compact
        assert len(compact) == 2
        assert any(e["event"] == "replica.file_rewritten" for e in logs)
    finally:
        await follower.close()
        await store.close()


def test_the_writer_refuses_blocks_out_of_order_or_range(tmp_path: Path) -> None:
    from dncgate.replica.compact import CompactListError

    path = tmp_path / "list.dnc"
    with CompactWriter(path, span=10_000, width=16) as writer:
        writer.add(5, array("H", [1, 2]))
        with pytest.raises(CompactListError, match="not ascending"):
            writer.add(5, array("H", [3]))
        with pytest.raises(CompactListError, match="outside"):
            writer.add(6, array("H", [10_000]))
        with pytest.raises(CompactListError, match="members in a 16-bit file"):
            writer.add(7, array("I", [1]))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # given up: nothing left beside it either
    with pytest.raises(CompactListError, match="span at most"):
        CompactWriter(path, span=10**5, width=16)
