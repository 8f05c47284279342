"""After a master dies and its replica is promoted, no client keeps paying for the dead address.

The master killed is the seed (the URL's node). Its port then gets a ``Tarpit``, which accepts and
never answers, as a host that is down would cost a connect or reply timeout per attempt. Before the
fix the lookup channel asked the seed first on every slot-table refresh (two timed-out connections
per refresh) and kept its connection object forever; redis-py's cluster client drops the node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from dncgate.store.redis.cluster import ClusterChannel, lookup_channel
from dncgate.store.redis.conn import Client, RedisSettings, close_client, make_client
from tests.store.cluster_lab import LOOPBACK, POLL, POLLS, Tarpit, cluster_lab, command

KEYS = [f"k{i}" for i in range(30)]  # their slots are on every master
GETS = [("GET", key) for key in KEYS]


async def _all_answer(client: Client, channel: ClusterChannel) -> bool:
    try:
        via_client = [await client.get(key) for key in KEYS]
        via_channel = await channel.run(GETS)
    except (RedisError, OSError):  # refused, timed out, CLUSTERDOWN while the replica takes over
        return False
    return via_client == via_channel == [b"1"] * len(KEYS)


async def test_after_the_seed_master_fails_over_nothing_goes_to_its_address(tmp_path: Path) -> None:
    lab = cluster_lab(tmp_path / "cluster")
    tarpit: Tarpit | None = None
    settings = RedisSettings(url=lab.url, cluster=True, socket_timeout=0.5, connect_timeout=0.5)
    client, channel = make_client(settings), lookup_channel(settings)
    assert isinstance(channel, ClusterChannel)
    try:
        seed = lab.nodes[0]
        assert "role:master" in command(seed.port, "INFO", "replication")  # redis-cli makes the first 3 masters
        for key in KEYS:
            await client.set(key, "1")
        assert await _all_answer(client, channel)
        lab.replicated(seed)
        lab.kill(seed)
        tarpit = Tarpit(seed.port)
        await asyncio.to_thread(lab.wait_ok, lab.survivors(), seed.port)
        await _recovered(client, channel)
        accepted = tarpit.accepted
        for _ in range(10):
            assert await _all_answer(client, channel)
            await channel.refresh()  # what every failed lookup or MOVED reply asks for
        assert tarpit.accepted == accepted  # neither client tried the dead address again
        assert (LOOPBACK, seed.port) not in channel.nodes
        assert f"{LOOPBACK}:{seed.port}" not in client.nodes_manager.nodes_cache  # type: ignore[union-attr]
    finally:
        await channel.close()
        await close_client(client)
        if tarpit is not None:
            tarpit.close()
        lab.stop()


async def _recovered(client: Client, channel: ClusterChannel) -> None:
    for _ in range(POLLS):
        if await _all_answer(client, channel):
            return
        await asyncio.sleep(POLL)
    pytest.fail("the clients did not reach the promoted replica")
