"""The consent ledger on Redis (key layout in ``ledger_keys``).

An append is one MULTI/EXEC under WATCH of the tenant's chain head and the state it folds into:
XADD to the history stream (ID ``<seq>-0``), the new current state, the new head, the outbox.
A concurrent append to the same tenant makes EXEC fail and the append is redone on the new head.
Once EXEC returns, the state is in Redis: every later ``facts()`` pipeline reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from redis.exceptions import WatchError

from dncgate.consent.ledger import ChainPoint, Clock, check_purge, is_upload, purge_record, utc_now
from dncgate.consent.model import (
    CONSENT_ACTIONS,
    PREFERENCE_ACTIONS,
    ConsentState,
    LedgerEvent,
    Preferences,
    fold_consent,
    fold_preferences,
    validate,
)
from dncgate.settings import ConsentSettings
from dncgate.store.errors import StoreUnavailable
from dncgate.store.redis import ledger_keys as keys
from dncgate.store.redis.conn import Client, RedisSettings, close_client, make_client, redis_errors

_APPEND_ATTEMPTS = 50
_PAGE = 500


class RedisLedger:
    def __init__(self, client: Client, config: ConsentSettings, *, clock: Clock = utc_now,
                 deadline: float = 5.0) -> None:
        self._r = client
        self.config = config
        self._clock = clock
        self._deadline = deadline

    @classmethod
    def connect(cls, url: str, config: ConsentSettings, *, clock: Clock = utc_now, timeout: float = 2.0,
                cluster: bool = False) -> RedisLedger:
        settings = RedisSettings(url=url, cluster=cluster, socket_timeout=timeout, connect_timeout=timeout,
                                 client_name="dncgate-ledger")
        return cls(make_client(settings), config, clock=clock, deadline=timeout * 3)

    async def append(self, event: LedgerEvent) -> LedgerEvent:
        validate(event, self.config.categories)
        try:
            async with asyncio.timeout(self._deadline):
                with redis_errors("ledger append"):
                    for _ in range(_APPEND_ATTEMPTS):
                        sealed = await self._try_append(event)
                        if sealed is not None:
                            return sealed
        except TimeoutError as exc:
            raise StoreUnavailable(f"redis ledger append: no answer within {self._deadline} s") from exc
        raise StoreUnavailable("redis ledger append: too many concurrent appends to one tenant")

    async def _try_append(self, event: LedgerEvent, anchor: ChainPoint | None = None) -> LedgerEvent | None:
        tenant = event.tenant
        head_key = keys.head(tenant)
        async with self._r.pipeline(transaction=True) as pipe:
            try:
                state_key = ""
                if event.action in CONSENT_ACTIONS:
                    state_key = keys.consent(tenant, event.entity, event.digits)
                elif event.action in PREFERENCE_ACTIONS:
                    state_key = keys.prefs(tenant, event.digits)
                await pipe.watch(head_key, *([state_key] if state_key else []))
                head = ChainPoint.decode(await pipe.get(head_key))
                now = self._clock()
                if head.recorded_at is not None and head.recorded_at > now:
                    now = head.recorded_at
                sealed = event.sealed(head.seq + 1, head.hash, now)
                writes: list[tuple[str, Any]] = []
                if event.action in CONSENT_ACTIONS:
                    raw = await pipe.get(state_key)
                    state = fold_consent(None if raw is None else ConsentState.from_json(raw), sealed,
                                         self.config.categories)
                    writes.append(("consent", state.to_json()))
                elif event.action in PREFERENCE_ACTIONS:
                    prefs = fold_preferences(_prefs(await pipe.hgetall(state_key)), sealed)
                    writes.append(("prefs", prefs))
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.xadd(keys.log(tenant), {"e": sealed.to_json()}, id=f"{sealed.seq}-0")
                pipe.set(head_key, ChainPoint(sealed.seq, sealed.hash, now).encode())
                for kind, value in writes:
                    if kind == "consent":
                        pipe.set(state_key, value)
                        pipe.sadd(keys.entities(tenant, event.digits), event.entity)
                    else:
                        pipe.delete(state_key)
                        pipe.hset(state_key, mapping=_prefs_hash(value))  # type: ignore[arg-type]
                if is_upload(sealed):
                    pipe.rpush(keys.outbox(tenant), sealed.to_json())
                if anchor is not None:
                    pipe.set(keys.anchor(tenant), anchor.encode())
                    pipe.xtrim(keys.log(tenant), minid=f"{anchor.seq + 1}-0", approximate=False)
                await pipe.execute()
                return sealed
            except WatchError:
                return None

    async def purge(self, tenant: str, before: datetime, *, by: str) -> LedgerEvent:
        check_purge(self.config, before, self._clock())
        with redis_errors("ledger purge"):
            last = await self.anchor(tenant)
            deleted = 0
            async for event in self.history(tenant):
                if event.recorded_at is None or event.recorded_at >= before:
                    break
                deleted += 1
                last = ChainPoint(event.seq, event.hash, event.recorded_at)
            for _ in range(_APPEND_ATTEMPTS):
                sealed = await self._try_append(purge_record(tenant, before, by, deleted, last), anchor=last)
                if sealed is not None:
                    return sealed
        raise StoreUnavailable("redis ledger purge: too many concurrent appends to one tenant")

    async def ack_outbox(self, tenant: str, count: int) -> None:
        with redis_errors("ledger outbox ack"):
            await self._r.ltrim(keys.outbox(tenant), count, -1)

    async def consents(self, tenant: str, callee: int) -> dict[str, ConsentState]:
        with redis_errors("ledger consents"):
            entities = sorted(_text(e) for e in await self._r.smembers(keys.entities(tenant, callee)))
            if not entities:
                return {}
            values = await self._r.mget([keys.consent(tenant, e, callee) for e in entities])
        return {e: ConsentState.from_json(v) for e, v in zip(entities, values, strict=True) if v is not None}

    async def preferences(self, tenant: str, callee: int) -> Preferences:
        with redis_errors("ledger preferences"):
            return _prefs(await self._r.hgetall(keys.prefs(tenant, callee)))

    async def history(self, tenant: str, callee: int | None = None) -> AsyncIterator[LedgerEvent]:
        start = "-"
        wanted = None if callee is None else f"+{callee}"
        while True:
            with redis_errors("ledger history"):
                page = await self._r.xrange(keys.log(tenant), min=start, max="+", count=_PAGE)
            if not page:
                return
            for _, fields in page:
                event = LedgerEvent.from_json((fields or {})[b"e"])
                if wanted is None or event.callee == wanted:
                    yield event
            last = _text(page[-1][0] or b"")
            start = "(" + last
            if len(page) < _PAGE:
                return

    async def head(self, tenant: str) -> ChainPoint:
        with redis_errors("ledger head"):
            return ChainPoint.decode(await self._r.get(keys.head(tenant)))

    async def anchor(self, tenant: str) -> ChainPoint:
        with redis_errors("ledger anchor"):
            return ChainPoint.decode(await self._r.get(keys.anchor(tenant)))

    async def outbox(self, tenant: str, limit: int = 100) -> list[LedgerEvent]:
        with redis_errors("ledger outbox"):
            raw = await self._r.lrange(keys.outbox(tenant), 0, limit - 1)
        return [LedgerEvent.from_json(r) for r in raw]

    async def close(self) -> None:
        await close_client(self._r)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _prefs(raw: dict[Any, Any]) -> Preferences:
    items = {_text(k): _text(v) for k, v in raw.items()}
    declined = items.get("declined")
    return Preferences(
        declined=frozenset(declined.split(",")) if declined else frozenset(),
        blocks=frozenset(item[2:] for item in items if item.startswith("b:")),
        record_id=items.get("record", ""),
    )


def _prefs_hash(prefs: Preferences) -> dict[str, str]:
    mapping = {"record": prefs.record_id}
    if prefs.declined:
        mapping["declined"] = ",".join(sorted(prefs.declined))
    mapping |= {keys.block_field(entity): prefs.record_id for entity in sorted(prefs.blocks)}
    return mapping
