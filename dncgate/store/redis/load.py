"""Writing lists into Redis: snapshot loads beside the live version, edits, and freeing old versions.

A load takes a new version number, records it as ``building:<heartbeat ms>`` in the list's
versions hash, SADDs every block's members in ascending order (an intset appends cheaply, while
random inserts move memory) in pipelined batches, then flips the pointer in one MULTI that also
marks the old version ``retired:<ms>``. Until the flip the old version serves every lookup, so a
load that dies half-way changes nothing that a lookup sees; the next load frees what it left.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import structlog
from redis.exceptions import WatchError

from dncgate.clock import now_iso
from dncgate.store.distinct import SortedDistinct, sorted_distinct
from dncgate.store.errors import StoreCorrupt, StoreUnavailable
from dncgate.store.protocol import Progress
from dncgate.store.redis.blocks import BlockEstimate, choose_k, iter_blocks, members_of
from dncgate.store.redis.conn import Client, RedisSettings, raw_connection, redis_errors
from dncgate.store.redis.keys import LISTS, ListKeys, Pointer, now_ms
from dncgate.store.redis.mux import Command, pack

_EDIT_ATTEMPTS = 3  # a swap during an edit: the edit is written again on the new live version
EDITS_PER_ENTRY = 10_000  # numbers per entry of the edits stream
# Entries the edits stream keeps (about; a replica further behind reloads; a swap trims the older
# versions' entries): at most ~10,000 x 10,000 numbers, ~1.4 GB in the worst case, ~1 MB for single edits.
EDITS_KEPT = 10_000
# One entry of the edits stream, its ID from the list's counter: consecutive, so a replica sees a gap.
_APPEND_EDIT = """
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'v', ARGV[2], 'op', ARGV[3], 'n', ARGV[4])
return seq
"""

log = structlog.get_logger("dncgate.store.redis")

EMPTY_K = 6


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def distinct_sorted(numbers: Iterable[int]) -> tuple[Sequence[int], int]:
    """``(sorted distinct numbers, how many were given)``; raises ``ValueError`` for non-E.164.

    Kept in an ``array('q')`` and sorted chunk by chunk (``dncgate.store.distinct``): a Python set
    and list of 100M numbers took 9 GiB."""
    uniq = sorted_distinct(numbers)
    return uniq, uniq.given


def pack_sadd(key: bytes, members: Sequence[int]) -> bytes:
    """``SADD key members...`` in RESP, for ascending non-negative ``members``.

    redis-py packs each argument in Python (~1.3 us a member, most of a big load's time); sorted
    members come in runs of equal digit count, so each run is one ``str.join``."""
    parts = [b"*%d\r\n$4\r\nSADD\r\n$%d\r\n%s\r\n" % (len(members) + 2, len(key), key)]
    start, width, top, total = 0, 1, 10, len(members)
    while start < total:
        end = bisect_left(members, top, start)
        if end > start:
            head = f"${width}\r\n"
            parts.append((head + f"\r\n{head}".join(map(str, members[start:end])) + "\r\n").encode())
        start, width, top = end, width + 1, top * 10
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Built:
    pointer: Pointer
    previous: Pointer | None
    estimate: BlockEstimate
    largest_block: int  # the block number with the most members, to check its encoding


class Loader:
    def __init__(
        self, client: Client, settings: RedisSettings, intset_entries: int, *, clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._client = client
        self._settings = settings
        self.intset_entries = intset_entries
        self._now_ms = clock_ms  # the wall clock (ms) of heartbeats and retirements; tests inject one

    def estimate(self, uniq: Sequence[int]) -> BlockEstimate:
        if not uniq:
            return BlockEstimate(EMPTY_K, 0, 0, 0, True)
        return choose_k(uniq, self.intset_entries, self._settings.block_k)

    async def live_pointer(self, keys: ListKeys) -> Pointer | None:
        with redis_errors("get pointer"):
            raw = await self._client.get(keys.pointer)
        return None if raw is None else Pointer.decode(raw, keys.pointer)

    async def replace(self, keys: ListKeys, uniq: Sequence[int], progress: Progress | None) -> Built:
        if isinstance(uniq, SortedDistinct):
            uniq = uniq.numbers  # the array itself: bisect and slices stay in C
        est = self.estimate(uniq)
        await self.collect(keys)
        with redis_errors("start load"):
            version = str(await self._client.incr(keys.seq))
            await self._client.hset(keys.versions, version, f"building:{self._now_ms()}")
            await self._client.sadd(LISTS, keys.name)
        log.info("store.redis.load_started", list_name=keys.name, version=version, numbers=len(uniq),
                 k=est.k, blocks=est.blocks, largest=est.largest, estimated_bytes=est.bytes)
        try:
            largest = await self._fill(keys, version, uniq, est.k, progress)
            pointer = Pointer(version, est.k, len(uniq), now_iso("microseconds"))
            with redis_errors("finish load"):
                await self._client.set(keys.count(version), len(uniq))
            previous = await self._flip(keys, pointer)
        except Exception:
            # Best effort: let the next load free this build at once instead of after abandoned_after.
            try:
                with redis_errors("abandon load"):
                    await self._client.hset(keys.versions, version, "abandoned")
            except Exception as exc:  # noqa: BLE001 -- the original error is the one to raise
                log.warning("store.redis.abandon_mark_failed", list_name=keys.name, version=version, error=str(exc))
            log.warning("store.redis.load_abandoned", list_name=keys.name, version=version)
            raise
        return Built(pointer, previous, est, largest)

    async def _fill(
        self, keys: ListKeys, version: str, uniq: Sequence[int], k: int, progress: Progress | None
    ) -> int:
        """SADD every block of ``uniq`` under ``version``; returns the block with most members."""
        chunk, batch = self._settings.sadd_chunk, self._settings.load_batch
        commands: list[bytes] = []
        block_ids: list[int] = []
        pending = loaded = 0
        largest, largest_size = 0, -1
        in_flight: asyncio.Task[int] | None = None
        try:
            for block, start, end in iter_blocks(uniq, k):
                if end - start > largest_size:
                    largest, largest_size = block, end - start
                members = members_of(uniq, start, end, block, k)
                key = keys.block(version, block).encode()
                commands.extend(pack_sadd(key, members[i : i + chunk]) for i in range(0, len(members), chunk))
                block_ids.append(block)
                pending += end - start
                if pending < batch:
                    continue
                # Keep one batch in flight: Redis appends it while the next one is prepared.
                if in_flight is not None:
                    loaded += await in_flight
                    if progress is not None:
                        progress(loaded)
                in_flight = asyncio.create_task(self._send(keys, version, block_ids, commands, pending))
                await asyncio.sleep(0)
                commands, block_ids, pending = [], [], 0
            if in_flight is not None:
                loaded += await in_flight
                in_flight = None
            if commands or block_ids:
                loaded += await self._send(keys, version, block_ids, commands, pending)
        finally:
            if in_flight is not None:
                in_flight.cancel()
                await asyncio.gather(in_flight, return_exceptions=True)
        if progress is not None:
            progress(loaded)
        return largest

    async def _send(
        self, keys: ListKeys, version: str, block_ids: list[int], commands: list[bytes], count: int,
    ) -> int:
        """One pipelined round trip of packed SADDs on a pooled connection; raises on any error reply."""
        # The index first: every key a build creates is recorded before it exists, so it can be freed.
        head: list[Command] = [("SADD", keys.blocks(version), *block_ids)] if block_ids else []
        heartbeat = ("HSET", keys.versions, version, f"building:{self._now_ms()}")
        payload = b"".join((pack(*head), *commands, pack(heartbeat)))
        replies = len(head) + len(commands) + 1
        with redis_errors("load batch"):
            async with raw_connection(self._client, keys.blocks(version)) as conn:
                try:
                    await conn.send_packed_command(payload, check_health=False)
                    for _ in range(replies):
                        await conn.read_response()  # raises the first error reply
                except BaseException:
                    await conn.disconnect()  # replies may be left unread: the connection is not reusable
                    raise
        return count

    async def _flip(self, keys: ListKeys, pointer: Pointer) -> Pointer | None:
        """Make ``pointer`` live in one MULTI and retire the version it replaces."""
        with redis_errors("flip pointer"):
            async with self._client.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(keys.pointer)
                        raw = await pipe.get(keys.pointer)
                        previous = None if raw is None else Pointer.decode(raw, keys.pointer)
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.set(keys.pointer, pointer.encode())
                        pipe.hset(keys.versions, pointer.version, "live")
                        if previous is not None:
                            pipe.hset(keys.versions, previous.version, f"retired:{self._now_ms()}")
                        await pipe.execute()
                        return previous
                    except WatchError:
                        continue

    async def create_empty(self, keys: ListKeys, k: int) -> Pointer:
        """A live, empty version for a list that has none (or the one another writer just made)."""
        with redis_errors("create version"):
            version = str(await self._client.incr(keys.seq))
            await self._client.hset(keys.versions, version, f"building:{self._now_ms()}")
            await self._client.sadd(LISTS, keys.name)
            await self._client.set(keys.count(version), 0)
            pointer = Pointer(version, k, 0, now_iso("microseconds"))
            if await self._client.set(keys.pointer, pointer.encode(), nx=True):
                await self._client.hset(keys.versions, version, "live")
                return pointer
            await self._client.hset(keys.versions, version, "abandoned")
        live = await self.live_pointer(keys)
        if live is None:
            raise StoreCorrupt(f"{keys.pointer}: vanished while a version was being created")
        return live

    async def trim_edits(self, keys: ListKeys) -> None:
        """After a swap, the edits of older versions serve no replica: trimmed up to the newest entry
        (a replica that had not read an edit of the new version yet sees a gap and reloads)."""
        with redis_errors("trim edits"):
            newest = await self._client.get(keys.edits_seq)
            if newest is not None:
                await self._client.xtrim(keys.edits, minid=f"{int(newest)}-0", approximate=False)

    async def edit(self, keys: ListKeys, uniq: Sequence[int], *, add: bool) -> int:
        """SADD (or SREM) numbers in the live version; returns how many changed.

        A swap that makes another version live while the edit is being written would leave the
        edit in the retired version only, so the pointer is read again afterwards and the edit
        repeated on the version that is live by then: when this returns, the live list has it.
        """
        pointer = await self.live_pointer(keys)
        for _ in range(_EDIT_ATTEMPTS):
            if pointer is None:
                if not add or not uniq:
                    return 0
                pointer = await self.create_empty(keys, self.estimate(uniq).k)
            changed = await self._edit_version(keys, pointer.version, pointer.k, uniq, add=add)
            now = await self.live_pointer(keys)
            if now is not None and now.version == pointer.version:
                return changed
            pointer = now
        raise StoreUnavailable(f"edit of {keys.name}: the live version kept changing ({_EDIT_ATTEMPTS} attempts)")

    async def _edit_version(self, keys: ListKeys, version: str, k: int, uniq: Sequence[int], *, add: bool) -> int:
        pipe = self._client.pipeline(transaction=False)
        blocks = list(iter_blocks(uniq, k))
        if add and blocks:
            pipe.sadd(keys.blocks(version), *(block for block, _, _ in blocks))
        for block, start, end in blocks:
            members = members_of(uniq, start, end, block, k)
            if add:
                pipe.sadd(keys.block(version, block), *members)
            else:
                pipe.srem(keys.block(version, block), *members)
        for start in range(0, len(uniq), EDITS_PER_ENTRY):  # after the sets: a replica never runs ahead
            pipe.eval(_APPEND_EDIT, 2, keys.edits, keys.edits_seq, EDITS_KEPT, version, "add" if add else "remove",
                      ",".join(map(str, uniq[start : start + EDITS_PER_ENTRY])))
        entries = -(-len(uniq) // EDITS_PER_ENTRY)
        with redis_errors("edit list"):
            results = await pipe.execute()
            results = results[: len(results) - entries]
            changed = sum(int(r) for r in results[1 if add and blocks else 0 :])
            if changed:
                await self._client.incrby(keys.count(version), changed if add else -changed)
        return changed

    async def collect(self, keys: ListKeys) -> list[str]:
        """Free every version of a list that is neither live nor a build still in progress, and
        every retired version whose grace period is over. Returns the versions freed."""
        with redis_errors("read versions"):
            states = await self._client.hgetall(keys.versions)
        live = await self.live_pointer(keys)
        now = self._now_ms()
        grace_ms = self._settings.retire_grace * 1000
        abandoned_ms = self._settings.abandoned_after * 1000
        freed = []
        for raw_version, raw_state in states.items():
            version, state = text(raw_version), text(raw_state)
            if live is not None and version == live.version:
                continue
            kind, _, at = state.partition(":")
            age = now - int(at) if at.isdigit() else None
            if kind == "building" and age is not None and age < abandoned_ms:
                continue  # another loader is still at work
            if kind == "retired" and age is not None and age < grace_ms:
                continue  # lookups may still be reading it
            await self.free_version(keys, version)
            freed.append(version)
        return freed

    async def free_version(self, keys: ListKeys, version: str) -> None:
        """UNLINK a version's keys in batches (freed by Redis in the background), index last."""
        index = keys.blocks(version)
        size = self._settings.unlink_batch
        with redis_errors("free version"):
            cursor = 0
            while True:
                cursor, raw = await self._client.sscan(index, cursor, count=size * 4)
                names = [keys.block(version, int(b)) for b in raw]
                pipe = self._client.pipeline(transaction=False)
                for i in range(0, len(names), size):
                    pipe.unlink(*names[i : i + size])
                if names:
                    await pipe.execute()
                if cursor == 0:
                    break
            await self._client.unlink(index, keys.count(version))
            await self._client.hdel(keys.versions, version)
        log.info("store.redis.version_freed", list_name=keys.name, version=version)
