"""The replica's copy of a Redis store: lists, prefix rules, standing, and the numbers with consent state.

Loaded at start from the store's live versions; kept current by one pipelined poll every ``poll_ms``:
each list's pointer, rules and new entries of its edits stream (``dnc:{L}:edits``, written by every
list edit after the edit itself), each tenant's standing hash and new entries of its consent ledger
stream (``dnc:{c:T}:log``: every consent and preference event, in order). ``confirmed_at`` is when the
last poll that left nothing unread was *sent*: everything written before then is applied. A pointer
naming another version reloads that list (a new compact file, shared by the gates of the host); a gap
in a stream's consecutive IDs (trimmed past us) reloads that list or that tenant's index.

The index of numbers with consent state only grows (a number whose records were purged still takes
the round trip): a number outside it has no consent, no declined category and no block.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import time
from array import array
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from dncgate.consent.ledger import ChainPoint
from dncgate.consent.model import LedgerEvent
from dncgate.errors import DncgateError
from dncgate.replica import intsets
from dncgate.replica.compact import CompactList, CompactListError, CompactWriter, member_code
from dncgate.settings import ReplicaSettings
from dncgate.store.errors import StoreError, StoreUnavailable
from dncgate.store.protocol import NATIONAL, list_key
from dncgate.store.redis import case_keys, ledger_keys
from dncgate.store.redis.conn import Client, RedisSettings, close_client, make_client, redis_errors
from dncgate.store.redis.keys import ListKeys, Pointer, tenant_tag

log = structlog.get_logger("dncgate.replica")
_PAGE = 1000  # stream entries per list or tenant per poll; more left: the poll is not complete
_BLOCK_BATCH = 500  # block sets read per pipeline while loading a list
_SCAN_COUNT = 10_000


@dataclass
class ListImage:
    """One list as the replica holds it: the live version's compact file plus its edits since."""

    name: str
    version: str = ""  # "" while the list has no live version
    compact: CompactList | None = None
    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    rules: frozenset[str] = frozenset()
    edits_seq: int = 0  # the last entry of the edits stream applied

    def has(self, number: int) -> bool:
        if number in self.added:
            return True
        return number not in self.removed and self.compact is not None and number in self.compact

    def apply(self, op: str, numbers: Sequence[int]) -> None:
        if op == "add":
            self.added.update(numbers)
            self.removed.difference_update(numbers)
        else:
            self.removed.update(numbers)
            self.added.difference_update(numbers)

    def close(self) -> None:
        if self.compact is not None:
            self.compact.close()
            self.compact = None


@dataclass
class TenantImage:
    stateful: set[int] = field(default_factory=set)  # numbers with any consent or preference record
    log_seq: int = 0  # the last ledger record applied
    standing: dict[str, bytes] = field(default_factory=dict)


class RedisFollower:
    """Follows one Redis store for ``tenants``: ``start()`` loads in the background, then polls."""

    def __init__(self, url: str, settings: ReplicaSettings, tenants: Collection[str], *,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 5.0) -> None:
        self.settings = settings
        self._client: Client = make_client(RedisSettings(url=url, socket_timeout=timeout, connect_timeout=timeout,
                                                        client_name="dncgate-replica"), admin=True)
        self._clock = clock
        self._wanted = tenants  # a live view (LiveTenants): a tenant a SIGHUP adds is followed from the next poll
        self.lists = {name: ListImage(name) for name in (NATIONAL, *(list_key(t) for t in tenants))}
        self.tenants = {tenant: TenantImage() for tenant in tenants}
        self.confirmed_at: float | None = None
        self.changes_applied = 0
        self.last_error = ""  # the last poll's or load's failure, for wait_ready's message
        self._task: asyncio.Task[None] | None = None
        self._polling = asyncio.Lock()  # the background loop and a caller's poll_once never interleave
        settings.dir.mkdir(parents=True, exist_ok=True)

    def age(self) -> float | None:
        """Seconds since the last complete poll was sent; None before the first."""
        return None if self.confirmed_at is None else self._clock() - self.confirmed_at

    def start(self) -> None:
        """Load in the background, then follow; until loaded, ``age()`` is None (every call takes the round trip)."""
        self._task = asyncio.create_task(self._run(), name="replica.follow")

    async def wait_ready(self, deadline: float = 120.0) -> None:
        """Until the first complete read (tests and benches; a gate serves meanwhile). Raises
        ``StoreUnavailable`` with the follower's last error if there is none within ``deadline``."""
        try:
            async with asyncio.timeout(deadline):
                while self.confirmed_at is None:
                    if self._task is not None and self._task.done():
                        self._task.result()
                    await asyncio.sleep(self.settings.poll / 4)
        except TimeoutError as exc:
            raise StoreUnavailable(f"replica not loaded within {deadline:.0f} s: {self.last_error or 'no error'}") \
                from exc

    async def _load_all(self) -> None:
        for image in self.lists.values():
            await self._load_list(image, await self._pointer(image.name))
        for tenant, state in self.tenants.items():
            await self._load_index(tenant, state)

    async def _follow_configured(self) -> None:
        """Tenants the configuration gained since the last poll (a SIGHUP) loaded, those it lost dropped.
        A tenant is followed only once its list and index are loaded: until then it is not in ``tenants``
        and its calls take the round trip, never an empty copy."""
        wanted = set(self._wanted)
        for tenant in [t for t in self.tenants if t not in wanted]:
            del self.tenants[tenant]
            self.lists.pop(list_key(tenant)).close()
            log.info("replica.tenant_dropped", tenant=tenant)
        for tenant in sorted(wanted - self.tenants.keys()):
            image, state = ListImage(list_key(tenant)), TenantImage()
            await self._load_list(image, await self._pointer(image.name))
            await self._load_index(tenant, state)
            self.lists[image.name], self.tenants[tenant] = image, state
            log.info("replica.tenant_added", tenant=tenant, numbers=len(image.compact or ()),
                     stateful=len(state.stateful))

    async def _run(self) -> None:
        failing, loaded = False, False
        while True:
            sent = self._clock()
            try:
                if not loaded:
                    async with self._polling:
                        await self._load_all()
                    loaded = True
                    log.info("replica.loaded", lists={i.name: len(i.compact or ()) for i in self.lists.values()},
                             stateful={t: len(s.stateful) for t, s in self.tenants.items()})
                complete = await self.poll_once()
            except (StoreError, DncgateError, OSError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if not failing:
                    log.warning("replica.poll_failed", error=str(exc), age_s=self.age(), loaded=loaded)
                failing = True
                await asyncio.sleep(self.settings.poll)
                continue
            if failing:
                log.info("replica.poll_recovered", age_s=self.age())
            failing = False
            if complete:
                self.confirmed_at = sent
                await asyncio.sleep(self.settings.poll)

    async def poll_once(self) -> bool:
        """Read and apply every change; True when nothing was left unread (``confirmed_at`` may move)."""
        async with self._polling:
            return await self._poll()

    async def _poll(self) -> bool:
        await self._follow_configured()
        images = list(self.lists.values())
        tenants = list(self.tenants.items())
        with redis_errors("replica poll"):
            pipe = self._client.pipeline(transaction=False)
            for image in images:
                keys = ListKeys.of(image.name)
                pipe.get(keys.pointer)
                pipe.hkeys(keys.rules)
                pipe.xrange(keys.edits, min=f"{image.edits_seq + 1}-0", max="+", count=_PAGE)
            for tenant, state in tenants:
                pipe.hgetall(case_keys.standing(tenant))
                pipe.xrange(ledger_keys.log(tenant), min=f"{state.log_seq + 1}-0", max="+", count=_PAGE)
            replies = await pipe.execute()
        complete = True
        for i, image in enumerate(images):
            raw_pointer, rules, edits = replies[3 * i : 3 * i + 3]
            complete &= await self._apply_list(image, raw_pointer, rules, edits)
        for j, (tenant, state) in enumerate(tenants):
            standing, entries = replies[3 * len(images) + 2 * j : 3 * len(images) + 2 * j + 2]
            state.standing = {_text(k): v for k, v in standing.items()}
            complete &= await self._apply_log(tenant, state, entries)
        return complete

    async def _apply_list(self, image: ListImage, raw_pointer: bytes | None, rules: list[bytes],
                          edits: list[tuple[bytes, dict[bytes, bytes]]]) -> bool:
        image.rules = frozenset(_text(r) for r in rules)
        pointer = None if raw_pointer is None else Pointer.decode(raw_pointer, ListKeys.of(image.name).pointer)
        if (pointer.version if pointer else "") != image.version:
            await self._load_list(image, pointer)
            return False  # edits read with the old version: read again
        for entry_id, fields in edits:
            seq = int(_text(entry_id).split("-", 1)[0])
            if seq != image.edits_seq + 1:
                log.warning("replica.edits_gap", list_name=image.name, expected=image.edits_seq + 1, found=seq)
                await self._load_list(image, pointer)
                return False
            image.edits_seq = seq
            if _text(fields.get(b"v", b"")) == image.version:
                numbers = [int(n) for n in _text(fields.get(b"n", b"")).split(",") if n]
                image.apply(_text(fields.get(b"op", b"")), numbers)
                self.changes_applied += len(numbers)
        return len(edits) < _PAGE

    async def _apply_log(self, tenant: str, state: TenantImage,
                         entries: list[tuple[bytes, dict[bytes, bytes]]]) -> bool:
        for entry_id, fields in entries:
            seq = int(_text(entry_id).split("-", 1)[0])
            if seq != state.log_seq + 1:
                log.warning("replica.ledger_gap", tenant=tenant, expected=state.log_seq + 1, found=seq)
                await self._load_index(tenant, state)
                return False
            state.log_seq = seq
            event = LedgerEvent.from_json(fields[b"e"])
            if event.callee:
                state.stateful.add(event.digits)
                self.changes_applied += 1
        return len(entries) < _PAGE

    async def _pointer(self, name: str) -> Pointer | None:
        keys = ListKeys.of(name)
        with redis_errors("replica pointer"):
            raw = await self._client.get(keys.pointer)
        return None if raw is None else Pointer.decode(raw, keys.pointer)

    async def _load_list(self, image: ListImage, pointer: Pointer | None) -> None:
        """The live version's numbers into a compact file (or the file another gate wrote), edits after it."""
        keys = ListKeys.of(image.name)
        with redis_errors("replica edits position"):
            edits_seq = int(await self._client.get(keys.edits_seq) or 0)  # before the blocks: edits after re-read
        compact = None
        if pointer is not None:
            path = self.settings.dir / f"{image.name.replace(':', '-')}-v{pointer.version}.dnc"
            async with _file_lock(path):  # one gate of the host writes it; the others map it
                compact = _open_existing(path)
                if compact is None:
                    started = time.perf_counter()
                    size = await self._write(path, keys, pointer)
                    log.info("replica.list_written", list_name=image.name, version=pointer.version, path=str(path),
                             bytes=size, seconds=round(time.perf_counter() - started, 3))
                    compact = CompactList.open(path)
            _remove_older(path, pointer.version)
        image.close()
        image.version = pointer.version if pointer else ""
        image.compact = compact
        image.added, image.removed = set(), set()
        image.edits_seq = edits_seq

    async def _write(self, path: Path, keys: ListKeys, pointer: Pointer) -> int:
        """The version's blocks, in ascending order, a batch at a time, into the file: the store's own blocks
        (span ``10**k``), each intset's members copied from its DUMP as they are (``intsets``), SMEMBERS for
        a block that is not a plain intset. The file is written in a thread: the gate's loop keeps serving."""
        scale = 10**pointer.k
        width = 16 if scale <= 2**16 else 32
        code = member_code(width)
        with redis_errors("replica load"):
            blocks = sorted(int(b) for b in await self._client.smembers(keys.blocks(pointer.version)))
        writer = CompactWriter(path, span=scale, width=width)
        listed = 0  # blocks read with SMEMBERS
        try:
            for start in range(0, len(blocks), _BLOCK_BATCH):
                batch = blocks[start : start + _BLOCK_BATCH]
                found = await self._read_blocks(keys, pointer.version, batch, code)
                listed += sum(1 for _, members, dumped in found if not dumped)
                await asyncio.to_thread(_add_all, writer, [(block, members) for block, members, _ in found])
            size = await asyncio.to_thread(writer.finish)
        finally:
            writer.close()
        log.info("replica.blocks_read", list_name=keys.name, version=pointer.version, blocks=len(blocks),
                 read_as_members=listed)
        return size

    async def _read_blocks(self, keys: ListKeys, version: str, batch: list[int],
                           code: str) -> list[tuple[int, array[int], bool]]:
        """``(block, members, dumped)`` of each block of ``batch``: one pipeline of DUMPs, then one of
        SMEMBERS for the blocks whose DUMP is not a plain intset."""
        with redis_errors("replica load"):
            pipe = self._client.pipeline(transaction=False)
            for block in batch:
                pipe.dump(keys.block(version, block))
            payloads = await pipe.execute()
            read = [intsets.members(payload, code) for payload in payloads]
            others = [block for block, members in zip(batch, read, strict=True) if members is None]
            listed: dict[int, array[int]] = {}
            if others:
                pipe = self._client.pipeline(transaction=False)
                for block in others:
                    pipe.smembers(keys.block(version, block))
                listed = {block: intsets.from_members(found, code)
                          for block, found in zip(others, await pipe.execute(), strict=True)}
        return [(block, members if members is not None else listed[block], members is not None)
                for block, members in zip(batch, read, strict=True)]

    async def _load_index(self, tenant: str, state: TenantImage) -> None:
        """Every number of ``tenant`` with a consent or preference record into ``state``; the ledger followed
        from the head read before the scan, so a record written during it is applied from the stream."""
        tag = tenant_tag(ledger_keys.FAMILY, tenant)
        found: set[int] = set()
        with redis_errors("replica index"):
            head = ChainPoint.decode(await self._client.get(ledger_keys.head(tenant)))
            for kind in ("sub", "ents"):
                async for key in self._client.scan_iter(match=f"{_glob(tag)}:{kind}:*", count=_SCAN_COUNT):
                    digits = _text(key).rsplit(":", 1)[1]
                    if digits.isdigit():
                        found.add(int(digits))
        state.stateful = found
        state.log_seq = head.seq

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for image in self.lists.values():
            image.close()
        await close_client(self._client)


def _open_existing(path: Path) -> CompactList | None:
    """The file another gate wrote, mapped; None when there is none, or one that cannot serve (an older
    format's, after an upgrade): removed, to be written again (a gate mapping it keeps its pages)."""
    if not path.exists():
        return None
    try:
        return CompactList.open(path)
    except CompactListError as exc:
        log.warning("replica.file_rewritten", path=str(path), error=str(exc))
        path.unlink(missing_ok=True)
        return None


def _add_all(writer: CompactWriter, blocks: list[tuple[int, array[int]]]) -> None:
    for block, members in blocks:
        writer.add(block, members)


@contextlib.asynccontextmanager
async def _file_lock(path: Path, wait: float = 0.05) -> AsyncIterator[None]:
    """An exclusive lock beside ``path`` (flock: released if the process dies). Tried without blocking,
    again every ``wait`` seconds: no thread is held while another gate writes the file."""
    with path.with_name(path.name + ".lock").open("a") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(wait)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_older(path: Path, version: str) -> None:
    """Files of this list's older versions: a gate that still maps one keeps its pages until it closes it."""
    stem = path.name.rsplit("-v", 1)[0]
    for other in path.parent.glob(f"{stem}-v*.dnc"):
        if other != path and other.name.rsplit("-v", 1)[1].removesuffix(".dnc").isdigit() and \
                int(other.name.rsplit("-v", 1)[1].removesuffix(".dnc")) < int(version):
            with contextlib.suppress(OSError):
                other.unlink()


def _glob(text: str) -> str:
    """``text`` with SCAN's glob characters escaped (a tag has braces; a tenant name has none of *?[)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
