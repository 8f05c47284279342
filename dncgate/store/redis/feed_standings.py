"""The carrier's feed standings on Redis (``enforcement.feed_standings``), as on SQLite
(``store.sqlite.feed_standings``): read for the feed a carrier serves, applied from the feed a
reseller syncs. Keys in ``case_keys``, all of one tenant's hash tag.

What the gate enforces stays in the ``standing`` hash ``facts()`` reads: the ``strictest`` of the
open case's standing (``own``, written by every append) and the feed's (``feed``, written by an
apply only), recomputed for an originator whenever either changes, in the Lua script of the change.
A store from before ``own`` existed has its open cases' standings in ``standing`` alone: an
originator with neither an ``own`` nor a ``feed`` entry takes its ``standing`` entry as its own.

Nothing here holds Redis for long (the gate's lookups wait behind a script): a hash is read with
HSCAN between two reads of the counter its every write bumps (``version`` for ``standing``,
``feed:generation`` for ``feed``), and read again if it moved; an apply writes only what changed,
``_CHUNK`` originators a script, each script first checking that ``feed:generation`` is still the
one it left (another apply in between: the apply reads again and goes on from what is there, a
bounded number of times). The applied version is set by the last script, so an apply cut short
leaves the feed's standings part new, part old, each originator's enforced standing consistent, and
the next sync completes it. The version a carrier serves (``version``) is bumped by every append
to ``max(previous + 1, the step's ms)``, and by each script of an apply that changed something.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dncgate.enforcement.feed_standings import MAX_STANDINGS, FeedStandings, StandingsApplied
from dncgate.store.errors import StoreUnavailable
from dncgate.store.redis import case_keys as keys
from dncgate.store.redis.conn import Client

_ATTEMPTS = 5  # reads or applies racing this one before it gives up (the next sync tries again)
_CHUNK = 1000  # originators an apply's script writes (a few ms of Redis each)
_PAGE = 1000  # HSCAN's COUNT
_MAX_PAGES = 4 * MAX_STANDINGS // _PAGE + 100  # a hash the feed (or the cases and the feed) could fill

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

# KEYS: version, updated. -> the version served now
_SERVED = LUA_SERVED + """
return string.format('%.0f', served(KEYS[1], KEYS[2]))
"""

# KEYS: feed:version, feed:generation. -> {applied version or false, generation or false}
_FEED_STATE = """
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}
"""

# KEYS: feed, own, standing, feed:version, feed:generation, version, updated.
# ARGV: the version applied, the generation expected, last ("1": set the applied version), then
#       key, value ('' = no longer listed) per change. -> {'ok', kept, generation} | {'retry', 0, 0}
_APPLY = LUA_STRICTEST + LUA_SERVED + """
if (redis.call('GET', KEYS[5]) or '') ~= ARGV[2] then return {'retry', 0, 0} end
local kept = 0
for i = 4, #ARGV, 2 do
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
if ARGV[3] == '1' then redis.call('SET', KEYS[4], ARGV[1]) end
if #ARGV > 3 then bump(KEYS[6], KEYS[7], 0) end
return {'ok', kept, redis.call('INCR', KEYS[5])}
"""

Bounded = Callable[[str, Awaitable[object]], Awaitable[object]]


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisFeedStandings:
    """The standings' reads and scripts of a ``RedisCaseStore`` (its client, its deadline)."""

    def __init__(self, client: Client, bounded: Bounded) -> None:
        self._r, self._bounded = client, bounded
        self._served = client.register_script(_SERVED)
        self._feed_state = client.register_script(_FEED_STATE)
        self._apply = client.register_script(_APPLY)

    async def standings(self, tenant: str) -> FeedStandings:
        served = [keys.version(tenant), keys.updated(tenant)]
        for _ in range(_ATTEMPTS):
            version = await self._bounded("standings", self._served(keys=served))
            found = await self._scan("standings", keys.standing(tenant))
            if await self._bounded("standings", self._served(keys=served)) == version:
                return FeedStandings(tenant, int(_text(version)), found)
        raise StoreUnavailable(f"redis standings: those of {tenant!r} changed under {_ATTEMPTS} reads")

    async def apply(self, tenant: str, feed: FeedStandings, accept_older: bool) -> StandingsApplied:
        """As ``store.sqlite.feed_standings.apply_standings``; raises ``StoreUnavailable`` when other
        applies keep changing the tenant's feed standings under this one."""
        for _ in range(_ATTEMPTS):
            applied, generation = await self._state(tenant)
            before = await self._scan("standings apply", keys.feed(tenant))
            if (await self._state(tenant))[1] != generation:  # another apply wrote while it was read
                continue
            version = -1 if applied is None else int(applied)
            if feed.version < version and not accept_older:
                return StandingsApplied(tenant, feed.version, refused=f"version {feed.version} is older than the "
                                                                      f"applied {version}")
            removed = [key for key in before if key not in feed.standings]
            added = [key for key in feed.standings if key not in before]
            changed = [key for key, value in feed.standings.items() if key in before and before[key] != value]
            changes = [(key, feed.standings.get(key, "")) for key in (*removed, *added, *changed)]
            kept = await self._write(tenant, feed.version, generation or "", changes)
            if kept is not None:
                return StandingsApplied(tenant, feed.version, len(added), len(changed), len(removed), kept)
        raise StoreUnavailable(f"redis standings apply: the feed standings of {tenant!r} changed under "
                               f"{_ATTEMPTS} attempts")

    async def _state(self, tenant: str) -> tuple[str | None, str | None]:
        """The applied version and the generation of the tenant's feed standings (None: none yet)."""
        reply = await self._bounded("standings apply", self._feed_state(
            keys=[keys.feed_version(tenant), keys.feed_generation(tenant)]))
        assert isinstance(reply, list)  # the script always answers a pair
        applied, generation = (None if raw is None else _text(raw) for raw in reply)
        return applied, generation

    async def _write(self, tenant: str, version: int, generation: str, changes: list[tuple[str, str]]) -> int | None:
        """``changes`` written ``_CHUNK`` a script; the originators whose own standing is enforced,
        or None when another apply wrote in between (what this one wrote is what its document says)."""
        script_keys = [keys.feed(tenant), keys.own(tenant), keys.standing(tenant), keys.feed_version(tenant),
                       keys.feed_generation(tenant), keys.version(tenant), keys.updated(tenant)]
        kept = 0
        for start in range(0, max(len(changes), 1), _CHUNK):
            last = start + _CHUNK >= len(changes)
            args = [str(version), generation, "1" if last else "0"]
            for key, value in changes[start:start + _CHUNK]:
                args += [key, value]
            done = await self._bounded("standings apply", self._apply(keys=script_keys, args=args))
            assert isinstance(done, list)  # the script always answers a triple
            if _text(done[0]) != "ok":
                return None
            kept, generation = kept + int(done[1]), _text(done[2])
        return kept

    async def _scan(self, what: str, key: str) -> dict[str, str]:
        """The whole hash, HSCAN a page at a time (a bounded number of pages)."""
        found: dict[str, str] = {}
        cursor = 0
        for _ in range(_MAX_PAGES):
            reply = await self._bounded(what, self._r.hscan(key, cursor, count=_PAGE))
            assert isinstance(reply, (list, tuple))
            cursor = int(reply[0])
            found.update((_text(name), _text(value)) for name, value in reply[1].items())
            if cursor == 0:
                return found
        raise StoreUnavailable(f"redis {what}: {key} has more than {_MAX_PAGES} pages")
