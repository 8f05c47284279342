"""Redis streams of call facts that several gates' analysers share (``[early_warning] transport = "redis"``).

Every key of partition ``P`` carries the tag ``{ew:P}``, so a script over a partition's keys stays
in one Redis Cluster slot.

===========================  ======  ===================================================================
key                          type    holds
===========================  ======  ===================================================================
``dnc:{ew:P}:facts``         stream  entries of field ``f``: a JSON list of facts (``early_warning.facts``);
                                     consumer group ``analysers``; ``XADD MAXLEN ~ [early_warning.stream] maxlen``
``dnc:{ew:P}:lease``         string  ``<analyser> <until ms>``: who holds the partition, until when
``dnc:{ew:P}:states``        hash    ``tenant\\x1foriginator`` -> the last applied entry ID (two u64) +
                                     ``Windows.dump()``: the checkpoint the next holder starts from
``dnc:{ew:P}:seen``          zset    the same fields by their last fact (s): idle states are dropped
``dnc:{ew}:members``         zset    analyser -> until ms: the live analysers (each takes its share)
===========================  ======  ===================================================================

Every call has a deadline (``bounded``) and every failure is a ``StoreError``; the lease times
are the analysers' own clocks (keep them within a fraction of ``lease_s``: NTP).
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from dncgate.store.errors import StoreError, StoreUnavailable
from dncgate.store.redis.conn import RedisSettings, bounded, make_client
from dncgate.store.redis.keys import TenantKey

log = structlog.get_logger("dncgate.store.redis.fact_stream")
FAMILY = "ew"
GROUP = "analysers"
MEMBERS = "dnc:{ew}:members"
FIELD = b"f"
facts_key = TenantKey(FAMILY, "facts")
lease_key = TenantKey(FAMILY, "lease")
states_key = TenantKey(FAMILY, "states")
seen_key = TenantKey(FAMILY, "seen")
MARK = struct.Struct(">QQ")  # the entry ID a state includes everything up to
Mark = tuple[int, int]
Entry = tuple[bytes, bytes | None]  # entry ID, the facts (None: not a facts entry)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one read of a partition gave: its new entries, and how many entries of it were trimmed
    (MAXLEN) before the analysers' group read them (facts lost to the early warning)."""

    partition: int
    entries: list[Entry]
    trimmed: int = 0

# KEYS: lease. ARGV: analyser, now ms, until ms, take ("1": also an absent or expired lease).
_HOLD = """
local held = redis.call('GET', KEYS[1])
if held then
  local sep = string.find(held, ' ', 1, true)
  if string.sub(held, 1, sep - 1) ~= ARGV[1] then
    if ARGV[4] ~= '1' or tonumber(string.sub(held, sep + 1)) > tonumber(ARGV[2]) then return 0 end
  end
elseif ARGV[4] ~= '1' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[3])
return 1
"""
_MINE = "local held = redis.call('GET', KEYS[1])\n" \
        "if not held or string.sub(held, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. ' ' then return 0 end\n"
# KEYS: lease. ARGV: analyser.
_RELEASE = _MINE + "redis.call('DEL', KEYS[1])\nreturn 1\n"
# KEYS: lease, facts. ARGV: analyser, group, last delivered ID, entries read. Only the lease's holder
# moves the group: a read that outlasted its lease must not set back what the next holder read.
_MARK = _MINE + "redis.call('XGROUP', 'SETID', KEYS[2], ARGV[2], ARGV[3], 'ENTRIESREAD', ARGV[4])\nreturn 1\n"
# KEYS: lease, states, seen. ARGV: analyser, then field, state, seen for each state.
_SAVE = _MINE + """
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[3], ARGV[i + 2], ARGV[i])
end
return 1
"""


def parse_id(entry_id: bytes | str) -> Mark:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class FactStreams:
    """Every Redis command of the shared early warning, each bounded by ``deadline`` seconds."""

    def __init__(self, client: Redis, *, partitions: int, maxlen: int, deadline: float) -> None:
        self._r = client
        self.partitions, self.maxlen, self.deadline = partitions, maxlen, deadline
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)
        self._save = client.register_script(_SAVE)
        self._mark = client.register_script(_MARK)

    @classmethod
    def connect(cls, url: str, *, partitions: int, maxlen: int, timeout: float = 2.0,
                client_name: str = "dncgate-early-warning") -> FactStreams:
        """No retries: a fact sent twice would be counted twice (a failed send is dropped and counted)."""
        settings = RedisSettings(url=url, socket_timeout=timeout, connect_timeout=timeout, pool_timeout=timeout,
                                 retry=Retry(NoBackoff(), 0), max_connections=8, client_name=client_name)
        client = make_client(settings)  # one server: settings refuse the redis transport on a cluster
        if not isinstance(client, Redis):
            raise TypeError("the fact streams need a single Redis server, not a cluster")
        return cls(client, partitions=partitions, maxlen=maxlen, deadline=timeout * 2)

    async def close(self) -> None:
        await self._r.aclose()
        await self._r.connection_pool.disconnect()

    # -- the gates' side --------------------------------------------------------------------------

    async def add(self, entries: Sequence[tuple[int, bytes]]) -> None:
        """XADD each (partition, facts) entry, trimming each stream to about ``maxlen``, in one round trip."""
        pipe = self._r.pipeline(transaction=False)
        for partition, raw in entries:
            pipe.xadd(facts_key(str(partition)), {FIELD: raw}, maxlen=self.maxlen, approximate=True)
        await bounded("fact add", self.deadline, pipe.execute())

    # -- the analysers' side ----------------------------------------------------------------------

    async def join(self, analyser: str, now_ms: int, until_ms: int) -> int:
        """Say ``analyser`` is alive until ``until_ms``; how many analysers are alive now."""
        pipe = self._r.pipeline(transaction=False)
        pipe.zadd(MEMBERS, {analyser: until_ms})
        pipe.zremrangebyscore(MEMBERS, "-inf", now_ms)
        pipe.zcard(MEMBERS)
        replies = await bounded("analyser join", self.deadline, pipe.execute())
        return int(replies[-1])

    async def leave(self, analyser: str, partitions: Sequence[int]) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.zrem(MEMBERS, analyser)
        for partition in partitions:
            pipe.xgroup_delconsumer(facts_key(str(partition)), GROUP, analyser)
        await bounded("analyser leave", self.deadline, pipe.execute(raise_on_error=False))

    async def hold(self, partition: int, analyser: str, now_ms: int, until_ms: int, *, take: bool) -> bool:
        """Renew ``analyser``'s lease (``take``: or take a free or expired one); False: someone else's."""
        reply = await bounded("lease", self.deadline, self._hold(
            keys=[lease_key(str(partition))], args=[analyser, now_ms, until_ms, "1" if take else "0"]))
        return int(reply) == 1

    async def release(self, partition: int, analyser: str) -> bool:
        reply = await bounded("lease release", self.deadline, self._release(keys=[lease_key(str(partition))],
                                                                            args=[analyser]))
        return int(reply) == 1

    async def ensure_group(self, partition: int) -> None:
        """The consumer group of the partition's stream, reading from its first entry (created once)."""
        try:
            await bounded("group create", self.deadline, self._r.xgroup_create(
                facts_key(str(partition)), GROUP, id="0", mkstream=True))
        except StoreUnavailable as exc:  # the group is there: BUSYGROUP
            cause = exc.__cause__
            if not (isinstance(cause, ResponseError) and "BUSYGROUP" in str(cause)):
                raise

    async def read(self, analyser: str, partitions: Sequence[int], count: int,
                   block_ms: int | None) -> list[Batch]:
        """New entries of ``partitions`` for ``analyser`` (XREADGROUP ``>``; ``block_ms`` None: do not
        wait), and how many entries of each were trimmed before the group read them (``Batch.trimmed``).

        The read runs in one MULTI with XINFO STREAM and XINFO GROUPS of each stream: the entries
        removed (``entries-added`` - ``length``) beyond those the group had read (``entries-read``)
        were trimmed unread (MAXLEN outran the analysers). The group's counter is then set to the
        true position (XGROUP SETID ... ENTRIESREAD, by a script that checks the lease), so the next
        loss is counted exactly too; a loss is reported once that succeeded (Redis 7.0 and later). With
        nothing new and ``block_ms``, an XREAD waits past the group's last entry, then it reads again."""
        found, waits = await self._read_now(analyser, partitions, count)
        if found or not block_ms:
            return found
        deadline = self.deadline + block_ms / 1000
        woke = await bounded("fact wait", deadline, self._r.xread(
            waits, count=1, block=block_ms))  # type: ignore[arg-type]
        return (await self._read_now(analyser, partitions, count))[0] if woke else []

    async def _read_now(self, analyser: str, partitions: Sequence[int],
                        count: int) -> tuple[list[Batch], dict[str, bytes]]:
        keys = [facts_key(str(p)) for p in partitions]
        pipe = self._r.pipeline(transaction=True)
        for key in keys:
            pipe.xinfo_stream(key)
            pipe.xinfo_groups(key)
        pipe.xreadgroup(GROUP, analyser, dict.fromkeys(keys, ">"), count=count)
        replies: list[Any] = await bounded("fact read", self.deadline, pipe.execute())
        delivered: dict[str, list[Entry]] = {}
        for key, entries in replies[-1] or []:
            delivered[key.decode() if isinstance(key, bytes) else str(key)] = [_entry(entry) for entry in entries]
        found, waits = [], {}
        for at, (partition, key) in enumerate(zip(partitions, keys, strict=True)):
            stream, group = replies[2 * at], _group(replies[2 * at + 1])
            entries = delivered.get(key, [])
            trimmed, position = _trimmed(stream, group, len(entries))
            # A nil counter Redis sets right itself on this read (from the stream's first entry); a
            # counter it kept counts on from where it was, behind by the loss: set it right here.
            if trimmed and group.get("entries-read") is not None and not await self._marked(
                    partition, analyser, key, entries[-1][0] if entries else group["last-delivered-id"], position):
                trimmed = 0  # counted by a later read, once the group's counter is set right
            if entries or trimmed:
                found.append(Batch(partition, entries, trimmed))
            waits[key] = entries[-1][0] if entries else group["last-delivered-id"]
        return found, waits

    async def _marked(self, partition: int, analyser: str, key: str, last: bytes, position: int) -> bool:
        """Set the group's counter to ``position`` (XGROUP SETID ... ENTRIESREAD, only while ``analyser``
        holds the lease); False, and logged, when it could not: the loss is then not counted yet."""
        try:
            reply = await bounded("fact mark", self.deadline, self._mark(
                keys=[lease_key(str(partition)), key], args=[analyser, GROUP, last, position]))
        except StoreError as exc:
            log.warning("early_warning.trim_mark_failed", partition=partition, error=str(exc))
            return False
        return int(reply) == 1

    async def claim(self, partition: int, analyser: str, start: bytes | str, count: int,
                    min_idle_ms: int = 0) -> tuple[bytes | str, list[Entry]]:
        """Pending entries of the partition (any analyser's) idle ``min_idle_ms``, now ``analyser``'s
        (XAUTOCLAIM): the next start ("0-0": none left) and the entries, trimmed ones left out."""
        reply: list[Any] = await bounded("fact claim", self.deadline, self._r.xautoclaim(
            facts_key(str(partition)), GROUP, analyser, min_idle_ms, start, count))
        return reply[0], [_entry(entry) for entry in reply[1] if entry is not None]

    async def ack(self, partition: int, ids: Sequence[bytes]) -> None:
        if ids:
            await bounded("fact ack", self.deadline, self._r.xack(facts_key(str(partition)), GROUP, *ids))

    async def states(self, partition: int, page: int = 500) -> AsyncIterator[tuple[bytes, Mark, bytes]]:
        """The partition's checkpoint: (field, mark, state) a page at a time."""
        cursor = 0
        while True:
            reply: tuple[int, dict[bytes, bytes]] = await bounded("state read", self.deadline, self._r.hscan(
                states_key(str(partition)), cursor, count=page))  # type: ignore[arg-type]
            cursor, rows = reply
            for name, value in rows.items():
                if len(value) > MARK.size:
                    yield name, MARK.unpack_from(value), value[MARK.size:]
            if cursor == 0:
                return

    async def save(self, partition: int, analyser: str, rows: Sequence[tuple[str, Mark, bytes, int]],
                   chunk: int = 100) -> bool:
        """Write (field, mark, state, seen) rows while ``analyser`` holds the lease; False: it does not."""
        for start in range(0, len(rows), chunk):
            args: list[str | bytes | int] = [analyser]
            for name, mark, state, seen in rows[start:start + chunk]:
                args += [name, MARK.pack(*mark) + state, seen]
            reply = await bounded("state save", self.deadline, self._save(
                keys=[lease_key(str(partition)), states_key(str(partition)), seen_key(str(partition))], args=args))
            if int(reply) != 1:
                return False
        return True

    async def forget(self, partition: int, before: int, limit: int = 1000) -> int:
        """Drop up to ``limit`` states whose last fact is older than ``before`` (s)."""
        seen = seen_key(str(partition))
        idle = await bounded("state forget", self.deadline, self._r.zrangebyscore(seen, "-inf", before - 1,
                                                                                 start=0, num=limit))
        if not idle:
            return 0
        pipe = self._r.pipeline(transaction=True)
        pipe.hdel(states_key(str(partition)), *idle)
        pipe.zrem(seen, *idle)
        await bounded("state forget", self.deadline, pipe.execute())
        return len(idle)


def _group(groups: list[dict[str, Any]]) -> dict[str, Any]:
    for group in groups:
        if group.get("name") in (GROUP, GROUP.encode()):
            return group
    raise StoreUnavailable(f"the stream has no consumer group {GROUP!r}")


def _trimmed(stream: dict[str, Any], group: dict[str, Any], delivered: int) -> tuple[int, int]:
    """(entries trimmed before the group read them, the group's true ``entries-read`` after
    ``delivered`` more): the streams are only ever trimmed (no XDEL), so the removed entries are
    ``entries-added - length``, and those beyond the group's ``entries-read`` it never read. An
    unknown counter (nil: a group that never read, or one Redis lost track of) is 0 for a group
    at 0-0 (it read nothing), else nothing is said this time (Redis estimates it on this read)."""
    added = stream.get("entries-added")
    if added is None:  # Redis before 7.0 keeps no such counter: nothing can be said
        return 0, 0
    removed = int(added) - int(stream["length"])
    read = group.get("entries-read")
    if read is None:
        if parse_id(group["last-delivered-id"]) != (0, 0):
            return 0, 0
        read = 0
    lost = removed - int(read)
    return (lost, removed + delivered) if lost > 0 else (0, 0)


def _entry(entry: tuple[bytes, dict[bytes, bytes] | None]) -> Entry:
    entry_id, fields = entry
    return entry_id, (fields or {}).get(FIELD)
