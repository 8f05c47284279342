"""Settings, connection pools and error mapping of the Redis list store.

redis-py's defaults (5 s socket timeout, retries with long backoff) kept one lookup blocked for
58 s on a stalled server; a call in the switch must fail fast instead, and the caller's policy
decides what a failed check means. So the lookup path gets short timeouts and one retry, and
loads, exports and cleanup get a separate pool with patient timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterPipeline
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, RedisError, ResponseError

from dncgate.settings.schema import StoreSettings
from dncgate.store.errors import StoreCorrupt, StoreUnavailable
from dncgate.store.redis.blocks import CANDIDATE_K

T = TypeVar("T")
RECOMMENDED_INTSET_ENTRIES = 1_000_000
REDIS_DEFAULT_INTSET_ENTRIES = 512
_STORE = StoreSettings()


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """How to reach Redis and how long to wait for it. Defaults suit the call path."""

    url: str
    cluster: bool = False  # url names one node of a Redis Cluster ([store] cluster)
    # Lookup path: every call is bounded by about socket_timeout x (retries + 1) + backoff.
    socket_timeout: float = _STORE.timeout  # [store] timeout_ms's default
    connect_timeout: float = _STORE.timeout
    retries: int = 1
    retry_backoff_base: float = 0.01
    retry_backoff_cap: float = 0.1
    # A policy of your own replaces retries/backoff above (used for both pools).
    retry: Retry | None = None
    max_connections: int = 32
    pool_timeout: float = 1.0  # how long a call waits for a free pooled connection
    lookup_deadline: float = 1.0  # hard cap on one facts() call, retries included
    # Loads, cleanup, stats, audit export: big pipelines that may take a while.
    admin_socket_timeout: float = 30.0
    admin_max_connections: int = 4
    # Loading: members per SADD and per pipelined round trip.
    sadd_chunk: int = 2_000  # one SADD of 20k members held Redis ~1-2 ms; 2k bounds a stall to ~0.2 ms
    load_batch: int = 200_000
    block_k: tuple[int, ...] = CANDIDATE_K
    # When CONFIG is disabled, what to assume for set-max-intset-entries (None: Redis's default).
    intset_entries: int | None = None
    encoding_samples: int = 5
    # Old versions are freed this long after the swap, so in-flight lookups finish first.
    retire_grace: float = 2.0
    # A build whose heartbeat is older than this is taken as abandoned and freed by the next load.
    abandoned_after: float = 60.0
    unlink_batch: int = 500
    audit_maxlen: int = 10_000_000
    audit_page: int = 1_000
    client_name: str = "dncgate"
    extra: dict[str, object] = field(default_factory=dict)  # more redis-py connection options

    def retry_policy(self) -> Retry:
        if self.retry is not None:
            return self.retry
        return Retry(ExponentialBackoff(cap=self.retry_backoff_cap, base=self.retry_backoff_base), self.retries)


class CommandPermits:
    """At most ``permits`` commands of one cluster client in flight; the others wait up to ``wait``
    seconds for one to finish (what ``BlockingConnectionPool`` does for one server). redis-py's
    cluster client raises ``MaxConnectionsError`` at once when a node's pool is used up, which turned
    a burst of ledger appends or audit writes into failed writes.

    A command sent while its task already holds the permit (a pipeline falling back to single
    commands, redis-py's per-node subtasks, which copy the context) does not wait for a second one."""

    def __init__(self, permits: int, wait: float) -> None:
        self.permits = permits
        self._wait = wait
        self._free = asyncio.Semaphore(permits)
        self._held: ContextVar[bool] = ContextVar(f"dncgate_redis_permits_{id(self)}", default=False)

    async def acquire(self) -> bool:
        """Take a permit; ``False`` (and nothing taken) when the current task holds one already."""
        if self._held.get():
            return False
        if self._free.locked():
            try:
                async with asyncio.timeout(self._wait):
                    await self._free.acquire()
            except TimeoutError as exc:
                raise ConnectionError(f"redis cluster: all {self.permits} connections busy for {self._wait} s") from exc
        else:
            await self._free.acquire()  # a permit is free: taken at once, no timer needed
        self._held.set(True)
        return True

    def release(self) -> None:
        self._held.set(False)
        self._free.release()


class GatedCluster(RedisCluster):
    """redis-py's cluster client whose commands, pipelines and transactions wait for a ``CommandPermits`` permit.
    Each permit-holder uses one connection per node (two while a transaction's connection is held
    and a nested command runs), so a node's pool is sized at twice the permits and is never used up."""

    permits: CommandPermits

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        taken = await self.permits.acquire()
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            if taken:
                self.permits.release()

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # redis-py's error
        return GatedPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py's own pipeline()


class GatedPipeline(ClusterPipeline):
    """Holds its client's permit from the first WATCH (which takes a connection) or from ``execute``
    until ``reset`` (which returns it; ``execute`` and leaving ``async with`` both reset)."""

    def __init__(self, client: GatedCluster, transaction: Any | None = None) -> None:
        super().__init__(client, transaction)
        self._permits = client.permits
        self._taken = False

    async def _take_permit(self) -> None:
        if not self._taken:
            self._taken = await self._permits.acquire()

    async def watch(self, *names: Any) -> Any:  # type: ignore[override]
        await self._take_permit()
        return await super().watch(*names)  # type: ignore[no-untyped-call]

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        await self._take_permit()
        return await super().execute(raise_on_error, allow_redirections)  # resets, so lets go

    async def reset(self) -> None:  # type: ignore[override]
        try:
            await super().reset()  # type: ignore[no-untyped-call]
        finally:
            if self._taken:
                self._taken = False
                self._permits.release()


Client = Redis | RedisCluster  # a single Redis, or a cluster routing each command to its key's master


def make_client(settings: RedisSettings, *, admin: bool = False) -> Client:
    """A client over its own bounded, blocking pool (callers wait up to pool_timeout for a slot); on a
    cluster, redis-py's cluster client behind ``CommandPermits`` of as many in-flight commands."""
    permits = settings.admin_max_connections if admin else settings.max_connections
    if settings.cluster:
        client = GatedCluster.from_url(
            settings.url,
            max_connections=2 * permits,
            socket_timeout=settings.admin_socket_timeout if admin else settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            retry=settings.retry_policy(),
            client_name=settings.client_name,
            **settings.extra,
        )
        assert isinstance(client, GatedCluster)  # from_url builds its own class
        client.permits = CommandPermits(permits, settings.admin_socket_timeout if admin else settings.pool_timeout)
        return client
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=permits,
        timeout=settings.admin_socket_timeout if admin else settings.pool_timeout,
        socket_timeout=settings.admin_socket_timeout if admin else settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        retry=settings.retry_policy(),
        client_name=settings.client_name,
        **settings.extra,
    )
    return Redis(connection_pool=pool)


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Map every Redis, socket and timeout error to a ``StoreError``; nothing raw escapes."""
    try:
        yield
    except ResponseError as exc:
        if "WRONGTYPE" in str(exc):
            raise StoreCorrupt(f"redis {what}: {exc}") from exc
        raise StoreUnavailable(f"redis {what}: {exc}") from exc
    except (RedisError, OSError, TimeoutError) as exc:
        raise StoreUnavailable(f"redis {what}: {type(exc).__name__}: {exc}") from exc


async def close_client(client: Client) -> None:
    """Close a client and every connection of its pool (or of each node's pool)."""
    await client.aclose()
    if isinstance(client, Redis):
        await client.connection_pool.disconnect()


@asynccontextmanager
async def raw_connection(client: Client, key: str) -> AsyncIterator[AbstractConnection]:
    """A pooled connection to the server (the master of ``key``'s slot) for packed commands."""
    if isinstance(client, Redis):
        pool = client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            yield conn
        finally:
            await pool.release(conn)
        return
    await client.initialize()
    node = client.get_node_from_key(key)
    if node is None:
        raise ConnectionError(f"redis cluster: no master known for the slot of {key}")
    permits = client.permits if isinstance(client, GatedCluster) else None
    taken = permits is not None and await permits.acquire()
    try:
        cluster_conn = node.acquire_connection()
        try:
            yield cluster_conn
        finally:
            node.release(cluster_conn)
    finally:
        if taken and permits is not None:
            permits.release()


async def bounded(what: str, deadline: float, operation: Awaitable[T]) -> T:
    """``operation``'s answer within ``deadline`` seconds; every failure a ``StoreError``."""
    try:
        async with asyncio.timeout(deadline):
            with redis_errors(what):
                return await operation
    except TimeoutError as exc:
        raise StoreUnavailable(f"redis {what}: no answer within {deadline} s") from exc
