"""The Redis list store: numbers sharded into intset blocks, versioned lists behind a pointer.

Numbers are split by a block size ``10**k`` chosen per load from the data's density
(``dncgate.store.redis.blocks``): key ``dnc:{L}:v<V>:b<number // 10**k>`` holds ``number % 10**k``, so
Redis keeps each block as an intset of 16- or 32-bit members (about 2-5 bytes a number where a set
of E.164 strings costs ~65). The key layout is documented in ``dncgate.store.redis.keys``.

A lookup is one pipelined round trip: both lists' pointers, SISMEMBER in the block of the version
last seen for each list, HMGET of both rule hashes over every leading part of the number. When a
pointer read back names another version than the one used, the cache is updated and the lookup
is redone once. Lookups travel over one auto-pipelined connection (``mux``): redis-py's
pipeline costs ~200 us of CPU per call; loads, stats and audit use bounded redis-py pools.
Old versions are freed ``retire_grace`` seconds after a swap, long after any lookup that could
still use them has finished.

Every Redis error, timeout or refused connection becomes ``StoreUnavailable``; data that makes
no sense becomes ``StoreCorrupt``. Server settings are checked at ``connect`` and after each load
(``store.redis.intset_limit_low``, ``store.redis.block_not_intset`` warnings).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import structlog
from redis.exceptions import ResponseError

from dncgate.audit_record import AuditRecord
from dncgate.consent.facts import NotAConsentState, consent_fact, declined
from dncgate.enforcement.model import standing_of
from dncgate.errors import CaseError
from dncgate.model import Facts, ListHit
from dncgate.store.audit_query import AuditPage, AuditQuery, MinuteCount
from dncgate.store.errors import StoreCorrupt, StoreUnavailable
from dncgate.store.protocol import (
    NATIONAL,
    ListStats,
    LoadResult,
    Progress,
    list_key,
    parse_list_name,
    parse_prefix,
    prefixes_of,
)
from dncgate.store.redis import audit as audit_log
from dncgate.store.redis import audit_search, case_keys, ledger_keys
from dncgate.store.redis.cluster import lookup_channel
from dncgate.store.redis.conn import (
    RECOMMENDED_INTSET_ENTRIES,
    REDIS_DEFAULT_INTSET_ENTRIES,
    Client,
    RedisSettings,
    close_client,
    make_client,
    redis_errors,
)
from dncgate.store.redis.keys import LISTS, ListKeys, Pointer, now_ms
from dncgate.store.redis.load import Built, Loader, distinct_sorted, text
from dncgate.store.redis.mux import Command

__all__ = ["RedisListStore", "RedisSettings"]

log = structlog.get_logger("dncgate.store.redis")

_NATIONAL = ListKeys.of(NATIONAL)
_ATTEMPTS = 3  # a lookup redone after a pointer moved; three moves in one lookup is not normal


class RedisListStore:
    """``ListStore`` on Redis. Build with ``await RedisListStore.connect(RedisSettings(url=...))``."""

    def __init__(
        self, settings: RedisSettings, client: Client, admin: Client, *, clock_ms: Callable[[], int] = now_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock_ms`` stamps heartbeats and retirements, ``sleep`` waits out ``retire_grace``:
        injected by tests, so that the grace logic does not depend on the machine's speed."""
        self._settings = settings
        self._sleep = sleep
        self._client = client  # short timeouts: ping, audit appends
        # Lookups: one auto-pipelined connection (to each cluster master) shared by all facts() calls.
        self._channel = lookup_channel(settings)
        self._admin = admin  # loads, cleanup, stats, audit export: patient timeouts
        self._loader = Loader(admin, settings, settings.intset_entries or REDIS_DEFAULT_INTSET_ENTRIES,
                              clock_ms=clock_ms)
        # list name -> (raw pointer as last read, decoded); a missing entry means "no pointer".
        self._pointers: dict[str, tuple[bytes | None, Pointer | None]] = {}
        self._tenant_keys: dict[str, ListKeys] = {}
        self._cleanups: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(
        cls, settings: RedisSettings, *, clock_ms: Callable[[], int] = now_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> RedisListStore:
        """Open both pools, PING, and check ``set-max-intset-entries``. Raises ``StoreUnavailable``."""
        store = cls(settings, make_client(settings), make_client(settings, admin=True), clock_ms=clock_ms, sleep=sleep)
        try:
            await store.ping()
            await store.check_server()
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def intset_entries(self) -> int:
        """The server's ``set-max-intset-entries`` as last read (or assumed)."""
        return self._loader.intset_entries

    async def check_server(self) -> int:
        """Read ``set-max-intset-entries``; warn when it is too low for big blocks or unreadable."""
        try:
            with redis_errors("config get"):
                try:
                    reply = await self._admin.config_get("set-max-intset-entries")
                except ResponseError as exc:  # CONFIG renamed, disabled, or not allowed by ACL
                    assumed = self._settings.intset_entries or REDIS_DEFAULT_INTSET_ENTRIES
                    log.warning(
                        "store.redis.config_unavailable", error=str(exc), assumed_intset_entries=assumed,
                        advice="CONFIG is not available: set RedisSettings.intset_entries to the server's "
                        f"set-max-intset-entries (recommended {RECOMMENDED_INTSET_ENTRIES})",
                    )
                    self._loader.intset_entries = assumed
                    return assumed
        except StoreUnavailable:
            raise
        try:
            limit = int(str(next(iter(reply.values()))))
        except (StopIteration, ValueError, TypeError):
            limit = self._settings.intset_entries or REDIS_DEFAULT_INTSET_ENTRIES
        self._loader.intset_entries = limit
        if limit < RECOMMENDED_INTSET_ENTRIES:
            log.warning(
                "store.redis.intset_limit_low", set_max_intset_entries=limit,
                recommended=RECOMMENDED_INTSET_ENTRIES,
                advice=f"set 'set-max-intset-entries {RECOMMENDED_INTSET_ENTRIES}' in redis.conf "
                f"(or CONFIG SET set-max-intset-entries {RECOMMENDED_INTSET_ENTRIES}): with {limit}, "
                "lists are split into small blocks or blocks become hash tables at ~10x the memory",
            )
        return limit

    # -- lookups ------------------------------------------------------------------------------

    def _keys_of_tenant(self, tenant: str) -> ListKeys:
        keys = self._tenant_keys.get(tenant)
        if keys is None:
            keys = ListKeys.of(list_key(tenant))
            if len(self._tenant_keys) < 100_000:
                self._tenant_keys[tenant] = keys
        return keys

    async def facts(self, tenant: str, number: int, *, entity: str = "", originators: Sequence[str] = ()) -> Facts:
        lists = (_NATIONAL, self._keys_of_tenant(tenant))
        keys = tuple(originators[:4])
        try:
            async with asyncio.timeout(self._settings.lookup_deadline):
                for _ in range(_ATTEMPTS):
                    facts = await self._lookup(lists, number, tenant, entity, keys)
                    if facts is not None:
                        return facts
        except TimeoutError as exc:
            raise StoreUnavailable(f"redis facts: no answer within {self._settings.lookup_deadline} s") from exc
        raise StoreUnavailable("redis facts: list pointers kept moving during the lookup")

    async def _lookup(
        self, lists: tuple[ListKeys, ListKeys], number: int, tenant: str, entity: str, originators: tuple[str, ...],
    ) -> Facts | None:
        """One round trip; ``None`` when a pointer read back differs from the one used (redo).

        The consent ledger's current state rides in the same pipeline: GET of the consent key of
        (tenant, entity, number) and HMGET of the number's preferences (``ledger_keys``); last,
        HMGET of the originator's keys in the tenant's standing hash (``case_keys``)."""
        prefixes = prefixes_of(number)
        used = [self._pointers.get(keys.name, (None, None)) for keys in lists]
        commands: list[Command] = [("GET", keys.pointer) for keys in lists]
        for keys, (_, pointer) in zip(lists, used, strict=True):
            if pointer is not None:
                block, member = divmod(number, 10**pointer.k)
                commands.append(("SISMEMBER", keys.block(pointer.version, block), member))
        commands.extend(("HMGET", keys.rules, *prefixes) for keys in lists)
        prefs = ledger_keys.prefs(tenant, number)
        commands.append(("GET", ledger_keys.consent(tenant, entity, number)) if entity else ("ECHO", ""))
        commands.append(("HMGET", prefs, "declined", ledger_keys.block_field(entity)))
        commands.append(("HMGET", case_keys.standing(tenant), *originators) if originators else ("ECHO", ""))
        with redis_errors("facts"):
            replies = await self._channel.run(commands)
        for reply in replies:
            if isinstance(reply, ResponseError):
                with redis_errors("facts"):
                    raise reply
        moved = False
        for keys, (raw, _), now in zip(lists, used, replies[:2], strict=True):
            if now != raw:
                self._pointers[keys.name] = (now, None if now is None else Pointer.decode(now, keys.pointer))
                moved = True
        if moved:
            return None
        position = 2
        hits: list[ListHit | None] = []
        for keys, (_, pointer) in zip(lists, used, strict=True):
            if pointer is None:
                hits.append(None)
                continue
            hits.append(ListHit(keys.name, pointer.version) if replies[position] else None)
            position += 1
        rules = _longest_rule(lists, used, prefixes, replies[position], replies[position + 1])
        national_pointer, tenant_pointer = used[0][1], used[1][1]
        declined_raw, block = replies[-2]
        found = dict(zip(originators, replies[-1], strict=True)) if originators else {}
        try:
            consent = consent_fact(replies[-3] if entity else None, "redis consent state")
            suspended, restriction = standing_of(originators, found)
        except (NotAConsentState, CaseError) as exc:
            raise StoreCorrupt(str(exc)) from exc
        return Facts(
            national=hits[0],
            tenant_list=hits[1],
            prefix_rule=rules,
            national_version=national_pointer.version if national_pointer is not None else "",
            tenant_version=tenant_pointer.version if tenant_pointer is not None else "",
            consent=consent,
            declined_categories=declined(declined_raw),
            subscriber_blocks_originator=bool(entity) and block is not None,
            originator_suspended=suspended, originator_restriction=restriction,
        )

    # -- loads and edits ----------------------------------------------------------------------

    async def replace_list(
        self, list_name: str, numbers: Iterable[int], *, progress: Progress | None = None
    ) -> LoadResult:
        keys = ListKeys.of(list_name)
        uniq, given = distinct_sorted(numbers)
        await self.check_server()
        built = await self._loader.replace(keys, uniq, progress)
        await self._loader.trim_edits(keys)
        await self.check_encodings(keys, built)
        previous = built.previous
        if previous is not None:
            self._retire_later(keys, previous.version)
        log.info("store.redis.list_replaced", list_name=keys.name, version=built.pointer.version,
                 loaded=len(uniq), k=built.pointer.k, blocks=built.estimate.blocks,
                 previous_version=previous.version if previous else None)
        return LoadResult(
            list_name=keys.name,
            version=built.pointer.version,
            loaded=len(uniq),
            duplicates=given - len(uniq),
            previous_version=previous.version if previous else None,
        )

    async def check_encodings(self, keys: ListKeys, built: Built) -> list[tuple[str, str]]:
        """OBJECT ENCODING of the largest block and a few random ones; warns about non-intsets.
        Returns ``(key, encoding)`` of every block sampled that is not an intset."""
        pointer = built.pointer
        if pointer.count == 0:
            return []
        with redis_errors("sample blocks"):
            sample = await self._admin.srandmember(keys.blocks(pointer.version), self._settings.encoding_samples)
            names = {keys.block(pointer.version, built.largest_block)}
            names.update(keys.block(pointer.version, int(b)) for b in sample or [])
            pipe = self._admin.pipeline(transaction=False)
            for name in names:
                pipe.object("encoding", name)
            encodings = await pipe.execute()
        bad = [(name, enc.decode() if isinstance(enc, bytes) else str(enc))
               for name, enc in zip(names, encodings, strict=True) if enc not in (b"intset", "intset", None)]
        for name, encoding in bad:
            log.warning(
                "store.redis.block_not_intset", key=name, encoding=encoding,
                set_max_intset_entries=self.intset_entries, largest_block=built.estimate.largest,
                advice=f"raise set-max-intset-entries to at least {built.estimate.largest} "
                f"(recommended {RECOMMENDED_INTSET_ENTRIES}) and reload the list",
            )
        return bad

    def _retire_later(self, keys: ListKeys, version: str) -> None:
        task = asyncio.create_task(self._free_after_grace(keys, version))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _free_after_grace(self, keys: ListKeys, version: str) -> None:
        await self._sleep(self._settings.retire_grace)
        try:
            await self._loader.free_version(keys, version)
        except Exception as exc:  # noqa: BLE001 -- the next load frees it; a cleanup must not crash
            log.warning("store.redis.free_failed", list_name=keys.name, version=version, error=str(exc))

    async def drain_cleanup(self) -> None:
        """Wait until every old version scheduled for freeing is freed (tests, CLI loads)."""
        while self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)

    async def collect_garbage(self, list_name: str) -> list[str]:
        """Free abandoned builds and retired versions past their grace now; returns their versions."""
        return await self._loader.collect(ListKeys.of(list_name))

    async def add_numbers(self, list_name: str, numbers: Sequence[int]) -> int:
        uniq, _ = distinct_sorted(numbers)
        return await self._loader.edit(ListKeys.of(list_name), uniq, add=True)

    async def remove_numbers(self, list_name: str, numbers: Sequence[int]) -> int:
        uniq, _ = distinct_sorted(numbers)
        return await self._loader.edit(ListKeys.of(list_name), uniq, add=False)

    async def set_prefix_rule(self, list_name: str, prefix: str, *, present: bool = True) -> None:
        keys = ListKeys.of(list_name)
        digits = parse_prefix(prefix)
        with redis_errors("set prefix rule"):
            if present:
                pipe = self._admin.pipeline(transaction=False)
                pipe.hset(keys.rules, digits, "1")
                pipe.sadd(LISTS, keys.name)
                await pipe.execute()
            else:
                await self._admin.hdel(keys.rules, digits)

    async def stats(self) -> list[ListStats]:
        with redis_errors("stats"):
            names = sorted(text(n) for n in await self._admin.smembers(LISTS))
            pipe = self._admin.pipeline(transaction=False)
            all_keys = [ListKeys.of(parse_list_name(name)) for name in names]
            for keys in all_keys:
                pipe.get(keys.pointer)
                pipe.hlen(keys.rules)
            replies = await pipe.execute()
            pointers = [None if raw is None else Pointer.decode(raw, keys.pointer)
                        for keys, raw in zip(all_keys, replies[0::2], strict=True)]
            pipe = self._admin.pipeline(transaction=False)
            for keys, pointer in zip(all_keys, pointers, strict=True):
                if pointer is not None:
                    pipe.get(keys.count(pointer.version))
                    pipe.scard(keys.blocks(pointer.version))
            counts = iter(await pipe.execute())
        result = []
        for keys, pointer, rules in zip(all_keys, pointers, replies[1::2], strict=True):
            if pointer is None:
                result.append(ListStats(keys.name, "", 0, "", int(rules), "no version loaded"))
                continue
            count, blocks = next(counts), next(counts)
            result.append(ListStats(
                keys.name, pointer.version, int(count) if count is not None else pointer.count,
                pointer.loaded_at, int(rules), f"redis intset blocks of 10^{pointer.k}: {int(blocks)} blocks",
            ))
        return result

    # -- sync state ---------------------------------------------------------------------------

    async def sync_state(self, list_name: str) -> dict[str, str]:
        keys = ListKeys.of(list_name)
        with redis_errors("get sync state"):
            raw = await self._admin.get(keys.sync)
        if raw is None:
            return {}
        try:
            state = json.loads(raw)
        except ValueError as exc:
            raise StoreCorrupt(f"{keys.sync}: not a sync state: {exc}") from exc
        return {str(k): str(v) for k, v in state.items()}

    async def set_sync_state(self, list_name: str, state: Mapping[str, str]) -> None:
        keys = ListKeys.of(list_name)
        data = json.dumps({str(k): str(v) for k, v in state.items()}, sort_keys=True)
        with redis_errors("set sync state"):
            await self._admin.set(keys.sync, data)

    # -- audit, health ------------------------------------------------------------------------

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        await audit_log.append(self._client, records, self._settings.audit_maxlen)

    async def audit_tail(self, limit: int) -> list[AuditRecord]:
        return await audit_log.tail(self._admin, limit)

    async def audit_export(self) -> AsyncIterator[AuditRecord]:
        async for record in audit_log.export(self._admin, self._settings.audit_page):
            yield record

    async def audit_search(self, query: AuditQuery) -> AuditPage:
        return await audit_search.search(self._admin, query)

    async def audit_record(self, decision_id: str) -> AuditRecord | None:
        return await audit_search.record(self._admin, decision_id)

    async def audit_minutes(self, tenants: tuple[str, ...], since: str) -> list[MinuteCount]:
        return await audit_search.minutes(self._admin, tenants, since, datetime.now(UTC))

    async def ping(self) -> None:
        with redis_errors("ping"):
            await self._client.ping()

    async def close(self) -> None:
        for task in list(self._cleanups):
            task.cancel()
        if self._cleanups:
            log.info("store.redis.cleanup_deferred", pending=len(self._cleanups),
                     advice="the next load of each list frees its retired versions")
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        await self._channel.close()
        for client in (self._client, self._admin):
            try:
                await close_client(client)
            except Exception as exc:  # noqa: BLE001 -- closing must not fail the caller
                log.warning("store.redis.close_failed", error=str(exc))


def _longest_rule(
    lists: tuple[ListKeys, ListKeys],
    used: list[tuple[bytes | None, Pointer | None]],
    prefixes: list[str],
    national: list[bytes | None],
    tenant: list[bytes | None],
) -> ListHit | None:
    """The longest matching prefix rule; on equal length the tenant's rule wins."""
    for i, prefix in enumerate(prefixes):
        for which, matches in ((1, tenant), (0, national)):
            if matches[i] is not None:
                pointer = used[which][1]
                return ListHit(lists[which].name, pointer.version if pointer else "", prefix=prefix)
    return None
