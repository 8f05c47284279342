"""What every list store offers. Backends: ``store.sqlite`` (embedded default) and ``store.redis``.

Numbers are E.164 digits without '+' as integers. Lists are ``national`` and ``tenant:NAME``;
each has a live version behind a pointer, so a new snapshot becomes visible in one step.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from dncgate.audit_record import AuditRecord
from dncgate.model import TENANT_NAME as _TENANT_NAME
from dncgate.model import Facts
from dncgate.store.errors import UnknownList

NATIONAL = "national"
_PREFIX = re.compile(r"[1-9][0-9]{0,14}")

Progress = Callable[[int], None]


def parse_list_name(name: str) -> str:
    """Validate a list name: ``national`` or ``tenant:NAME``. Raises ``UnknownList``."""
    if name == NATIONAL:
        return name
    kind, _, tenant = name.partition(":")
    if kind == "tenant" and _TENANT_NAME.fullmatch(tenant):
        return name
    raise UnknownList(
        f"list name {name!r}: expected 'national' or 'tenant:NAME' (NAME: letters, digits, _.-)"
    )


@lru_cache(maxsize=1024)  # on every check (a store's lookup, the replica's): the configured tenants' names
def list_key(tenant: str) -> str:
    """The list name of a tenant's own list (raises ``UnknownList`` for a name no list can have)."""
    return parse_list_name(f"tenant:{tenant}")


def parse_prefix(prefix: str) -> str:
    """A prefix rule as E.164 digits without '+': '+86170' -> '86170'. Raises ``ValueError``."""
    digits = prefix.removeprefix("+")
    if not _PREFIX.fullmatch(digits):
        raise ValueError(f"prefix {prefix!r}: expected 1-15 digits of an E.164 number, like +86170")
    return digits


def prefixes_of(number: int) -> list[str]:
    """Every leading part of a number, longest first: the candidates for longest-prefix match."""
    digits = str(number)
    return [digits[:n] for n in range(len(digits), 0, -1)]


@dataclass(frozen=True, slots=True)
class LoadResult:
    list_name: str
    version: str
    loaded: int
    duplicates: int
    previous_version: str | None


@dataclass(frozen=True, slots=True)
class ListStats:
    list_name: str
    version: str
    count: int
    loaded_at: str
    prefix_rules: int
    detail: str = ""


async def stats_of(store: ListStore, list_name: str) -> ListStats | None:
    """One list's stats from ``store.stats()``; None when the store has no such list."""
    return next((s for s in await store.stats() if s.list_name == list_name), None)


class ListStore(Protocol):
    """A list store. Every method may raise ``StoreUnavailable``; none raises anything but ``StoreError``."""

    async def facts(self, tenant: str, number: int, *, entity: str = "", originators: Sequence[str] = ()) -> Facts:
        """National list, the tenant's list and prefix rules for one number, the consent
        ledger's current state for (tenant, entity, number) and the number's preferences, and the
        standing enforcement gave the originator's keys (``originators``: ``account:X``, at most 4,
        ``dncgate.enforcement.model.originator_keys``): one round trip."""
        ...

    async def replace_list(
        self, list_name: str, numbers: Iterable[int], *, progress: Progress | None = None
    ) -> LoadResult:
        """Load a full snapshot beside the live one, then make it live in one step."""
        ...

    async def add_numbers(self, list_name: str, numbers: Sequence[int]) -> int:
        """Add to the live version; returns how many were new."""
        ...

    async def remove_numbers(self, list_name: str, numbers: Sequence[int]) -> int:
        """Remove from the live version; returns how many were there."""
        ...

    async def set_prefix_rule(self, list_name: str, prefix: str, *, present: bool = True) -> None:
        """Add (or remove) a prefix rule such as '86170' on a list."""
        ...

    async def stats(self) -> list[ListStats]: ...

    async def sync_state(self, list_name: str) -> dict[str, str]:
        """What the list's last sync recorded (sequence, ETag, ...); empty when never synced."""
        ...

    async def set_sync_state(self, list_name: str, state: Mapping[str, str]) -> None:
        """Replace the list's sync state (one write, seen whole or not at all)."""
        ...

    async def append_audit(self, records: Sequence[AuditRecord]) -> None: ...

    async def audit_tail(self, limit: int) -> list[AuditRecord]:
        """The newest ``limit`` records, oldest first."""
        ...

    def audit_export(self) -> AsyncIterator[AuditRecord]:
        """Every retained record, oldest first."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
