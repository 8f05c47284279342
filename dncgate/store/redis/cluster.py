"""The lookup channel on a Redis Cluster: each command of a lookup sent to the master of its key's slot.

A lookup's commands touch up to four slots: the national list's (``{national}``), the tenant list's
(``{t:T}``), the tenant's consent ledger (``{c:T}``) and its cases (``{e:T}``). Every command names
one key, so no command spans slots; the channel groups the commands by the master that serves
each slot, sends each group over that master's auto-pipelined connection (``mux``) at the same
time, and puts the replies back in order. The slot table comes from ``CLUSTER SLOTS``.

Failover: while a master is down, its groups fail (refused connection, reply timeout) and the
lookup raises, which the gate turns into a failed check (fail closed). Each failure, and each
``MOVED`` reply, asks for the slot table again (one refresh at a time, at most one per
``refresh_every`` seconds), so the first lookup after the replica is promoted reaches it.
A ``MOVED`` reply also repoints its slot at once and the lookup is sent once more.
A refresh asks the masters of the current table first and the nodes that just failed (a lookup or
a refresh) last, so a dead master (the seed, say) costs no connect timeout once the survivors
answer; a node the new table does not name is dropped with its connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ConnectionError, RedisError, ResponseError

from dncgate.store.redis.conn import RedisSettings
from dncgate.store.redis.mux import Command, Multiplexer

log = structlog.get_logger("dncgate.store.redis")

Address = tuple[str, int]
_SENDS = 2  # a lookup sent again once after a MOVED reply repointed a slot


def slot_of(command: Command) -> int | None:
    """The slot of a command's key (its second word); ``None`` for a command without one (ECHO)."""
    if command[0] == "ECHO" or len(command) < 2:
        return None
    key = command[1]
    return key_slot(key if isinstance(key, bytes) else str(key).encode())


def parse_slots(reply: Any, queried: Address) -> list[tuple[int, int, Address]]:
    """``CLUSTER SLOTS`` as ``(first slot, last slot, master address)``; raises ``ValueError``."""
    ranges: list[tuple[int, int, Address]] = []
    if not isinstance(reply, list):
        raise ValueError(f"CLUSTER SLOTS answered {reply!r}")
    for entry in reply:
        first, last, master = int(entry[0]), int(entry[1]), entry[2]
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        ranges.append((first, last, (host or queried[0], int(master[1]))))
    return ranges


class ClusterChannel:
    """Lookups over one auto-pipelined connection to each master of the cluster ``url`` names."""

    def __init__(
        self, url: str, *, connect_timeout: float, reply_timeout: float, retry: Retry, client_name: str,
        refresh_every: float = 0.1,
    ) -> None:
        params = parse_url(url)
        self._url = url
        self._seed: Address = (str(params.get("host", "localhost")), int(params.get("port", 6379)))
        self._options: dict[str, Any] = {"connect_timeout": connect_timeout, "reply_timeout": reply_timeout,
                                          "retry": retry, "client_name": client_name}
        self._nodes: dict[Address, Multiplexer] = {}
        self._slots: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._refresh_every = refresh_every
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed_at = float("-inf")
        self._failing: set[Address] = set()  # failed their last lookup or refresh: asked last
        self._retired: list[Multiplexer] = []  # dropped from the table, closed once idle

    @property
    def nodes(self) -> tuple[Address, ...]:
        """The nodes this channel keeps a connection (or a slot for one) to."""
        return tuple(self._nodes)

    def _node(self, address: Address) -> Multiplexer:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = Multiplexer(self._url, address=address, **self._options)
        return node

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        """The replies of ``commands`` in order (error replies as values); raises redis-py's
        ``ConnectionError`` / ``TimeoutError`` when a master does not answer."""
        if self._refreshed_at == float("-inf"):
            await self.refresh()
        for _ in range(_SENDS):
            replies = await self._send(commands)
            if not self._repointed(replies):
                return replies
        return replies

    async def _send(self, commands: Sequence[Command]) -> list[Any]:
        groups: dict[Address, list[int]] = {}
        loose: list[int] = []
        for index, command in enumerate(commands):
            slot = slot_of(command)
            if slot is None:
                loose.append(index)
                continue
            address = self._slots[slot]
            if address is None:
                self.refresh_soon()
                raise ConnectionError(f"redis cluster: no master known for slot {slot}")
            groups.setdefault(address, []).append(index)
        if not groups:
            groups[self._seed] = []
        next(iter(groups.values())).extend(loose)
        sent = [(indexes, self._node(address).run([commands[i] for i in indexes]))
                for address, indexes in groups.items()]
        answers = await asyncio.gather(*(call for _, call in sent), return_exceptions=True)
        replies: list[Any] = [None] * len(commands)
        for (address, indexes), answer in zip(groups.items(), answers, strict=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, RedisError | OSError):
                    self._failing.add(address)
                    self.refresh_soon()
                raise answer
            if self._failing:
                self._failing.discard(address)
            for index, reply in zip(indexes, answer, strict=True):
                replies[index] = reply
        return replies

    def _repointed(self, replies: list[Any]) -> bool:
        """Repoint the slot of every ``MOVED`` reply; ``True`` if there was one. ``ASK`` (a slot being
        migrated) and ``CLUSTERDOWN`` ask for the table again and stay error replies."""
        moved = False
        for reply in replies:
            if not isinstance(reply, ResponseError):
                continue
            words = str(reply).split()
            if words[:1] == ["MOVED"] and len(words) == 3:
                host, _, port = words[2].rpartition(":")
                self._slots[int(words[1])] = (host or self._seed[0], int(port))
                moved = True
            if words[:1] in (["MOVED"], ["ASK"], ["CLUSTERDOWN"], ["TRYAGAIN"]):
                self.refresh_soon()
        return moved

    def refresh_soon(self) -> None:
        """Read the slot table again in the background, unless a read is running or was just done."""
        loop = asyncio.get_running_loop()
        if self._refresh is not None or loop.time() - self._refreshed_at < self._refresh_every:
            return
        self._refresh = asyncio.create_task(self._refresh_in_background(), name="store.redis.cluster_refresh")

    async def _refresh_in_background(self) -> None:
        try:
            await self.refresh()
        except (RedisError, OSError) as exc:
            log.warning("store.redis.cluster_slots_unavailable", error=str(exc))
        finally:
            self._refresh = None

    def _candidates(self) -> list[Address]:
        """Whom a refresh asks, in order: the table's masters, the other nodes known, the seed; of
        these, the ones failing now last."""
        known = dict.fromkeys([*dict.fromkeys(self._slots), *self._nodes, self._seed])
        return sorted((a for a in known if a is not None), key=lambda address: address in self._failing)

    async def refresh(self) -> None:
        """Read ``CLUSTER SLOTS`` from the first node that answers (``_candidates`` order)."""
        self._refreshed_at = asyncio.get_running_loop().time()
        errors: list[str] = []
        for address in self._candidates():
            try:
                reply = (await self._node(address).run([("CLUSTER", "SLOTS")]))[0]
                if isinstance(reply, ResponseError):
                    raise reply
                ranges = parse_slots(reply, address)
            except (RedisError, OSError, ValueError, IndexError, TypeError) as exc:
                self._failing.add(address)
                errors.append(f"{address[0]}:{address[1]}: {exc}")
                continue
            self._failing.discard(address)
            self._adopt(ranges)
            return
        raise ConnectionError("redis cluster: no node answered CLUSTER SLOTS (" + "; ".join(errors) + ")")

    def _adopt(self, ranges: list[tuple[int, int, Address]]) -> None:
        """Take the new slot table; drop (and close once idle) the connections of nodes it does not name."""
        table: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        for first, last, master in ranges:
            table[first : last + 1] = [master] * (last - first + 1)
        masters = {master for *_, master in ranges}
        if table != self._slots:
            log.info("store.redis.cluster_slots", masters=sorted(f"{h}:{p}" for h, p in masters),
                     uncovered=table.count(None))
        self._slots = table
        for address in [a for a in self._nodes if a not in masters]:
            self._retired.append(self._nodes.pop(address))
            log.info("store.redis.cluster_node_dropped", node=f"{address[0]}:{address[1]}")
        self._failing &= masters | {self._seed}
        still_busy: list[Multiplexer] = []
        for node in self._retired:
            if node.busy:
                still_busy.append(node)
            else:
                node.abort()
        self._retired = still_busy

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
        for node in [*self._nodes.values(), *self._retired]:
            await node.close()


def lookup_channel(settings: RedisSettings) -> Multiplexer | ClusterChannel:
    """The channel of ``facts()``: one connection to a single Redis, or one to each master of a cluster."""
    kind = ClusterChannel if settings.cluster else Multiplexer
    return kind(settings.url, connect_timeout=settings.connect_timeout, reply_timeout=settings.socket_timeout,
                retry=settings.retry_policy(), client_name=settings.client_name)
