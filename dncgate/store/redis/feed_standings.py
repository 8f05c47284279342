"""The carrier's feed standings on Redis (``enforcement.feed_standings``), as on SQLite
(``store.sqlite.feed_standings``): read for the feed a carrier serves, applied from the feed a
reseller syncs. Keys in ``case_keys``, all of one tenant's hash tag.

What the gate enforces stays in the ``standing`` hash ``facts()`` reads: the ``strictest`` of the
open case's standing (``own``, written by every append) and the feed's (``feed``, written by an
apply only), recomputed for an originator whenever either changes, in the Lua script of the change.
A store from before ``own`` existed has its open cases' standings in ``standing`` alone: an
originator with neither an ``own`` nor a ``feed`` entry takes its ``standing`` entry as its own.

An apply diffs the document against the ``feed`` hash it read (with the applied version and the
``feed:generation``, atomically), refuses an older version there, and writes only what changed in
one script that first checks the generation is still the one it read (another apply in between:
it reads again, a bounded number of times). The version a carrier serves (``version``) is bumped
by every append to ``max(previous + 1, the step's ms)``, and by an apply that changed something.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dncgate.enforcement.feed_standings import FeedStandings, StandingsApplied
from dncgate.store.errors import StoreUnavailable
from dncgate.store.redis import case_keys as keys
from dncgate.store.redis.conn import Client

_ATTEMPTS = 5  # applies racing this one before it gives up (the next sync tries again)

# ``strictest`` of two stored values (false: clear), as enforcement.feed_standings.strictest.
LUA_STRICTEST = """
local function tighter(a, b)
  if a > 0 and b > 0 then return math.min(a, b) end
  return math.max(a, b)
end
local function caps(value)
  local _, _, per_minute, concurrent = string.find(value, '^r:(%d+):(%d+)$')
  if not per_minute then error('dncgate: not a standing: ' .. value) end
  return tonumber(per_minute), tonumber(concurrent)
end
local function strictest(own, feed)
  if own == 's' or feed == 's' then return 's' end
  if not own then return feed end
  if not feed then return own end
  local mp, mc = caps(own)
  local tp, tc = caps(feed)
  return string.format('r:%d:%d', tighter(mp, tp), tighter(mc, tc))
end
local function enforce(standing, key, value)
  if value then redis.call('HSET', standing, key, value) else redis.call('HDEL', standing, key) end
end
"""

# The version the tenant's feed serves now. KEYS[version], KEYS[updated] (a store from before the counter).
LUA_SERVED = """
local function served(version, updated)
  local current = redis.call('GET', version)
  if current then return tonumber(current) end
  local top = redis.call('ZREVRANGE', updated, 0, 0, 'WITHSCORES')
  return tonumber(top[2] or '0')
end
local function bump(version, updated, now)
  local next = math.max(served(version, updated) + 1, now)
  redis.call('SET', version, string.format('%.0f', next))
end
"""

# KEYS: version, updated, standing. -> {version, {key, value, ...}}
_READ = LUA_SERVED + """
return {string.format('%.0f', served(KEYS[1], KEYS[2])), redis.call('HGETALL', KEYS[3])}
"""

# KEYS: feed, feed:version, feed:generation. -> {applied version or false, generation or false, {key, value...}}
_SNAPSHOT = """
return {redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), redis.call('HGETALL', KEYS[1])}
"""

# KEYS: feed, own, standing, feed:version, feed:generation, version, updated.
# ARGV: the version applied, the generation read, then key, value ('' = no longer listed) per change.
_APPLY = LUA_STRICTEST + LUA_SERVED + """
if (redis.call('GET', KEYS[5]) or '') ~= ARGV[2] then return {'retry', 0} end
local kept = 0
for i = 3, #ARGV, 2 do
  local key, value = ARGV[i], ARGV[i + 1]
  local own = redis.call('HGET', KEYS[2], key)
  if not own and redis.call('HEXISTS', KEYS[1], key) == 0 then
    own = redis.call('HGET', KEYS[3], key)  -- the feed set none of it: the standing is its case's alone
    if own then redis.call('HSET', KEYS[2], key, own) end
  end
  local feed = false
  if value == '' then redis.call('HDEL', KEYS[1], key) else redis.call('HSET', KEYS[1], key, value); feed = value end
  local enforced = strictest(own, feed)
  enforce(KEYS[3], key, enforced)
  if own and own == enforced then kept = kept + 1 end
end
redis.call('SET', KEYS[4], ARGV[1])
redis.call('INCR', KEYS[5])
if #ARGV > 2 then bump(KEYS[6], KEYS[7], 0) end
return {'ok', kept}
"""

Bounded = Callable[[str, Awaitable[object]], Awaitable[object]]


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _pairs(flat: object) -> dict[str, str]:
    assert isinstance(flat, list)  # HGETALL inside a script answers a flat list
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


class RedisFeedStandings:
    """The standings' scripts of a ``RedisCaseStore`` (its client, its deadline)."""

    def __init__(self, client: Client, bounded: Bounded) -> None:
        self._bounded = bounded
        self._read = client.register_script(_READ)
        self._snapshot = client.register_script(_SNAPSHOT)
        self._apply = client.register_script(_APPLY)

    async def standings(self, tenant: str) -> FeedStandings:
        reply = await self._bounded("standings", self._read(
            keys=[keys.version(tenant), keys.updated(tenant), keys.standing(tenant)]))
        assert isinstance(reply, list)
        return FeedStandings(tenant, int(_text(reply[0])), _pairs(reply[1]))

    async def apply(self, tenant: str, feed: FeedStandings, accept_older: bool) -> StandingsApplied:
        """As ``store.sqlite.feed_standings.apply_standings``; raises ``StoreUnavailable`` when other
        applies keep changing the tenant's feed standings under this one."""
        for _ in range(_ATTEMPTS):
            reply = await self._bounded("standings apply", self._snapshot(
                keys=[keys.feed(tenant), keys.feed_version(tenant), keys.feed_generation(tenant)]))
            assert isinstance(reply, list)
            applied = -1 if reply[0] is None else int(_text(reply[0]))
            if feed.version < applied and not accept_older:
                return StandingsApplied(tenant, feed.version, refused=f"version {feed.version} is older than the "
                                                                      f"applied {applied}")
            before = _pairs(reply[2])
            removed = [key for key in before if key not in feed.standings]
            added = [key for key in feed.standings if key not in before]
            changed = [key for key, value in feed.standings.items() if key in before and before[key] != value]
            args: list[str | int] = [str(feed.version), "" if reply[1] is None else _text(reply[1])]
            for key in (*removed, *added, *changed):
                args += [key, feed.standings.get(key, "")]
            done = await self._bounded("standings apply", self._apply(keys=[
                keys.feed(tenant), keys.own(tenant), keys.standing(tenant), keys.feed_version(tenant),
                keys.feed_generation(tenant), keys.version(tenant), keys.updated(tenant)], args=args))
            assert isinstance(done, list)
            if _text(done[0]) == "ok":
                return StandingsApplied(tenant, feed.version, len(added), len(changed), len(removed), int(done[1]))
        raise StoreUnavailable(f"redis standings apply: the feed standings of {tenant!r} changed under "
                               f"{_ATTEMPTS} attempts")
