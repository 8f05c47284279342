"""Enforcement cases on Redis (key layout in ``case_keys``).

An append is one Lua script over the tenant's keys, so it is atomic and one round trip: it finds
a replay by the idempotency key, checks the case's head (its log's length and last hash), refuses
a second open case for an originator, then pushes the transition, writes the case, the open-case
index, the case's own standing and the standing hash that ``facts()`` reads (the stricter of that
and a carrier feed's, ``feed_standings``), and bumps the version of the standings the tenant's
feed serves. Once it returns, every later lookup sees it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from dncgate.early_warning.alerts import OriginatorKey
from dncgate.enforcement.complaints import Complaint
from dncgate.enforcement.feed_standings import FeedStandings, StandingsApplied
from dncgate.enforcement.model import Case, CaseState, Transition, encode_standing, standing_key
from dncgate.enforcement.protocol import CaseConflict
from dncgate.store.redis import case_keys as keys
from dncgate.store.redis.conn import Client, RedisSettings, bounded, close_client, make_client
from dncgate.store.redis.feed_standings import LUA_SERVED, LUA_STRICTEST, RedisFeedStandings

_PAGE = 500

# KEYS: idem, log, cases, updated, open, standing, own, feed, version.
# ARGV: idem key, case id, seq, prev hash, transition JSON, case JSON, originator, standing ("" = clear),
#       closed ("1"/"0"), updated ms.
_APPEND = LUA_STRICTEST + LUA_SERVED + """
local seen = redis.call('HGET', KEYS[1], ARGV[1])
if seen then return {'replay', seen} end
local seq = tonumber(ARGV[3])
local length = redis.call('LLEN', KEYS[2])
if length ~= seq - 1 then return {'conflict', 'case is at seq ' .. length} end
if length > 0 then
  local last = cjson.decode(redis.call('LINDEX', KEYS[2], -1))
  if last['hash'] ~= ARGV[4] then return {'conflict', 'head hash differs'} end
end
local holder = redis.call('HGET', KEYS[5], ARGV[7])
if holder and holder ~= ARGV[2] then return {'conflict', 'open case ' .. holder} end
bump(KEYS[9], KEYS[4], tonumber(ARGV[10]))
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[6])
redis.call('ZADD', KEYS[4], tonumber(ARGV[10]), ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
if ARGV[9] == '1' then redis.call('HDEL', KEYS[5], ARGV[7]) else redis.call('HSET', KEYS[5], ARGV[7], ARGV[2]) end
local own = false
if ARGV[8] == '' then
  redis.call('HDEL', KEYS[7], ARGV[7])
else
  redis.call('HSET', KEYS[7], ARGV[7], ARGV[8])
  own = ARGV[8]
end
enforce(KEYS[6], ARGV[7], strictest(own, redis.call('HGET', KEYS[8], ARGV[7])))
return {'ok', ''}
"""

# KEYS: complaints, by_time. ARGV: id, JSON, ms.
_PUT_COMPLAINT = """
local seen = redis.call('HGET', KEYS[1], ARGV[1])
if seen then return seen end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[1])
return false
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class RedisCaseStore:
    """``CaseStore`` on Redis."""

    def __init__(self, client: Client, *, deadline: float = 5.0) -> None:
        self._r = client
        self._deadline = deadline
        self._append = client.register_script(_APPEND)
        self._put = client.register_script(_PUT_COMPLAINT)
        self._feed = RedisFeedStandings(client, self._bounded)

    @classmethod
    def connect(cls, url: str, *, timeout: float = 2.0, cluster: bool = False) -> RedisCaseStore:
        settings = RedisSettings(url=url, cluster=cluster, socket_timeout=timeout, connect_timeout=timeout,
                                 client_name="dncgate-cases")
        return cls(make_client(settings), deadline=timeout * 3)

    async def _bounded(self, what: str, operation: object) -> object:
        return await bounded(what, self._deadline, operation)  # type: ignore[arg-type]

    async def append(self, step: Transition, case: Case) -> tuple[Transition, bool]:
        tenant = step.tenant
        script_keys = [keys.idempotency(tenant), keys.log(tenant, step.case_id), keys.cases(tenant),
                       keys.updated(tenant), keys.open_cases(tenant), keys.standing(tenant), keys.own(tenant),
                       keys.feed(tenant), keys.version(tenant)]
        args: list[str | int] = [
            step.idempotency_key, step.case_id, step.seq, step.prev_hash, step.to_json(), case.to_json(), case.key,
            encode_standing(case) or "", "1" if case.state is CaseState.CLOSED else "0", _ms(case.updated_at),
        ]
        reply = await self._bounded("case append", self._append(keys=script_keys, args=args))
        assert isinstance(reply, list)  # the script always answers a pair
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if status == "replay":
            return Transition.from_json(reply[1]), True
        if status == "conflict":
            detail = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
            raise CaseConflict(f"case {step.case_id} of {case.originator}: {detail}")
        return step, False

    async def transition_by_key(self, tenant: str, idempotency_key: str) -> Transition | None:
        raw = await self._bounded("case replay", self._r.hget(keys.idempotency(tenant), idempotency_key))
        return None if raw is None else Transition.from_json(raw)  # type: ignore[arg-type]

    async def case(self, tenant: str, case_id: str) -> Case | None:
        raw = await self._bounded("case get", self._r.hget(keys.cases(tenant), case_id))
        return None if raw is None else Case.from_json(raw)  # type: ignore[arg-type]

    async def open_case(self, originator: OriginatorKey) -> Case | None:
        case_id = await self._bounded("open case", self._r.hget(keys.open_cases(originator.tenant),
                                                                standing_key(originator)))
        if case_id is None:
            return None
        return await self.case(originator.tenant, case_id.decode() if isinstance(case_id, bytes) else str(case_id))

    async def cases(self, tenant: str, *, state: CaseState | None = None, limit: int = 100) -> list[Case]:
        found: list[Case] = []
        start = 0
        while len(found) < limit:
            ids = await self._bounded("case list", self._r.zrevrange(keys.updated(tenant), start, start + _PAGE - 1))
            assert isinstance(ids, list)
            if not ids:
                break
            start += len(ids)
            raws = await self._bounded("case list", self._r.hmget(keys.cases(tenant), ids))
            assert isinstance(raws, list)
            for raw in raws:
                if raw is not None:
                    case = Case.from_json(raw)
                    if state is None or case.state is state:
                        found.append(case)
        return found[:limit]

    async def transitions(self, tenant: str, case_id: str) -> AsyncIterator[Transition]:
        start = 0
        while True:
            rows = await self._bounded("case log", self._r.lrange(keys.log(tenant, case_id), start, start + _PAGE - 1))
            assert isinstance(rows, list)
            if not rows:
                return
            start += len(rows)
            for raw in rows:
                yield Transition.from_json(raw)

    # -- the reseller feed's standings (store.redis.feed_standings) ----------------------

    async def standings(self, tenant: str) -> FeedStandings:
        return await self._feed.standings(tenant)

    async def apply_feed_standings(self, tenant: str, feed: FeedStandings, *,
                                   accept_older: bool = False) -> StandingsApplied:
        return await self._feed.apply(tenant, feed, accept_older)

    async def put_complaint(self, complaint: Complaint) -> tuple[Complaint, bool]:
        tenant = complaint.tenant
        seen = await self._bounded("complaint put", self._put(
            keys=[keys.complaints(tenant), keys.complaints_by_time(tenant)],
            args=[complaint.id, complaint.to_json(), _ms(complaint.received_at)]))
        if seen is None:
            return complaint, False
        return Complaint.from_json(seen), True  # type: ignore[arg-type]

    async def update_complaint(self, complaint: Complaint) -> None:
        await self._bounded("complaint update", self._r.hset(keys.complaints(complaint.tenant), complaint.id,
                                                              complaint.to_json()))

    async def complaint(self, tenant: str, complaint_id: str) -> Complaint | None:
        raw = await self._bounded("complaint get", self._r.hget(keys.complaints(tenant), complaint_id))
        return None if raw is None else Complaint.from_json(raw)  # type: ignore[arg-type]

    async def complaints(self, tenant: str, *, limit: int = 100) -> list[Complaint]:
        ids = await self._bounded("complaint list", self._r.zrevrange(keys.complaints_by_time(tenant), 0, limit - 1))
        assert isinstance(ids, list)
        if not ids:
            return []
        raws = await self._bounded("complaint list", self._r.hmget(keys.complaints(tenant), ids))
        assert isinstance(raws, list)
        return [Complaint.from_json(raw) for raw in raws if raw is not None]

    async def close(self) -> None:
        await close_client(self._r)
