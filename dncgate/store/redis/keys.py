"""Redis key layout of the list store, and the pointer that names a list's live version.

Every key of one list carries the list's hash tag, so commands and MULTI blocks that touch
several keys of a list stay in one Redis Cluster slot; no command spans two lists. ``L`` is the
list tag: ``national`` or ``t:NAME`` for ``tenant:NAME``.

=================================  =======  ==========================================================
key                                type     holds
=================================  =======  ==========================================================
``dnc:lists``                      set      every list name that has a version or rules (for stats)
``dnc:{L}:ptr``                    string   the live pointer, JSON: version, k, count, loaded_at
``dnc:{L}:seq``                    string   INCR counter handing out version numbers
``dnc:{L}:versions``               hash     version -> ``building:<ms>`` | ``live`` | ``retired:<ms>``
``dnc:{L}:v<V>:b<B>``              set      members ``number % 10**k`` of block ``B = number // 10**k``
``dnc:{L}:v<V>:blocks``            set      the block numbers ``B`` of version ``V`` (to free them)
``dnc:{L}:v<V>:n``                 string   how many numbers version ``V`` holds
``dnc:{L}:rules``                  hash     prefix digits -> ``1``: prefix rules of the list
``dnc:{L}:sync``                   string   the list's sync state, JSON object of strings
``dnc:{L}:edits``                  stream   edits of live versions for replicas: ID ``<seq>-0``, fields
                                            ``v`` version, ``op`` ``add``/``remove``, ``n`` numbers (comma-separated)
``dnc:{L}:edits:seq``              string   INCR counter of the edits stream's IDs (consecutive: a gap says trimmed)
``dnc:{audit}``                    stream   audit records, field ``r`` = the record's JSON
``dnc:{audit}:ids``                zset     the last records' decision ids (a replay adds none twice)
=================================  =======  ==========================================================

A lookup pipelines GET of both pointers, SISMEMBER of the block key of the cached versions and
HMGET of both rule hashes; the pointers read back validate the cached versions. One list lives
in one slot: at about 5 bytes a number even a 10M-number national list is ~50 MB on one node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from dncgate.store.errors import StoreCorrupt
from dncgate.store.protocol import NATIONAL, parse_list_name

LISTS = "dnc:lists"
AUDIT = "dnc:{audit}"


def tag(list_name: str) -> str:
    """The hash-tagged prefix of every key of a (validated) list name."""
    name = parse_list_name(list_name)
    if name == NATIONAL:
        return "dnc:{national}"
    return "dnc:{t:" + name.removeprefix("tenant:") + "}"


def tenant_tag(family: str, tenant: str) -> str:
    """The hash-tagged prefix of a tenant's keys of one family (``e``: cases, ``c``: consent ledger)."""
    return "dnc:{" + family + ":" + tenant + "}"


@dataclass(frozen=True, slots=True)
class TenantKey:
    """One key a tenant has in a family: ``TenantKey("e", "cases")("acme")`` is ``dnc:{e:acme}:cases``."""

    family: str
    suffix: str

    def __call__(self, tenant: str) -> str:
        return f"{tenant_tag(self.family, tenant)}:{self.suffix}"


@dataclass(frozen=True, slots=True)
class ListKeys:
    """The keys of one list; those that name no version are spelled once, by :meth:`of` (a store
    keeps one ListKeys a list, so a lookup formats none of them)."""

    name: str
    prefix: str
    pointer: str
    seq: str
    versions: str
    rules: str
    sync: str
    edits: str
    edits_seq: str

    @classmethod
    def of(cls, list_name: str) -> ListKeys:
        prefix = tag(list_name)
        return cls(
            parse_list_name(list_name), prefix, pointer=f"{prefix}:ptr", seq=f"{prefix}:seq",
            versions=f"{prefix}:versions", rules=f"{prefix}:rules", sync=f"{prefix}:sync",
            edits=f"{prefix}:edits", edits_seq=f"{prefix}:edits:seq",
        )

    def block(self, version: str, block: int) -> str:
        return f"{self.prefix}:v{version}:b{block}"

    def blocks(self, version: str) -> str:
        return f"{self.prefix}:v{version}:blocks"

    def count(self, version: str) -> str:
        return f"{self.prefix}:v{version}:n"


@dataclass(frozen=True, slots=True)
class Pointer:
    """What the pointer key of a list says: the live version and how its numbers are split."""

    version: str
    k: int
    count: int
    loaded_at: str  # ISO 8601, UTC

    def encode(self) -> str:
        return json.dumps(
            {"version": self.version, "k": self.k, "count": self.count, "loaded_at": self.loaded_at},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: bytes | str, key: str) -> Pointer:
        try:
            data = json.loads(raw)
            pointer = cls(str(data["version"]), int(data["k"]), int(data["count"]), str(data["loaded_at"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreCorrupt(f"{key}: not a list pointer ({exc})") from exc
        if not pointer.version.isdigit() or not 1 <= pointer.k <= 14:
            raise StoreCorrupt(f"{key}: pointer names version {pointer.version!r} with k={pointer.k}")
        return pointer

    def loaded_at_time(self) -> datetime | None:
        try:
            at = datetime.fromisoformat(self.loaded_at)
        except ValueError:
            return None
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
