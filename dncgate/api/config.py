"""``[api]``: the HTTP API on the gate's HTTP listener, and its tenant-scoped keys (stored hashed).

    [api]
    enabled = true
    [api.keys.crm-acme]          # a key id of your choosing (it appears in logs, never the key)
    tenant = "acme"
    sha256 = "9f86d0..."         # sha256 of the key: `dncgate api-key new --tenant acme` prints both
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dncgate.config import _Reader

_HEX = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KEY_PREFIX = "dncg_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    tenant: str
    sha256: str


@dataclass(frozen=True, slots=True)
class ApiConfig:
    enabled: bool = False
    keys: tuple[ApiKey, ...] = field(default=())
    write_deadline: float = 2.0  # every ledger write and lookup of the API


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key: 32 random bytes. Only its SHA-256 goes into the configuration."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def api_settings(table: _Reader, tenants: Mapping[str, object]) -> ApiConfig:
    enabled = table.get("enabled", bool, False)
    keys_t = table.table("keys")
    keys = []
    for key_id in keys_t.data:
        if not _KEY_ID.fullmatch(key_id):
            raise keys_t.error(key_id, "a key id is 1-64 letters, digits, '_', '.' or '-'")
        entry = keys_t.table(key_id)
        tenant = entry.get("tenant", str, "")
        digest = entry.get("sha256", str, "").lower()
        if tenant not in tenants:
            raise entry.error("tenant", f"{tenant!r} is not a configured tenant")
        if not _HEX.fullmatch(digest):
            raise entry.error("sha256", "64 hex digits: the SHA-256 of the key (never the key itself)")
        entry.check_unknown()
        keys.append(ApiKey(key_id, tenant, digest))
    if len({k.sha256 for k in keys}) != len(keys):
        raise keys_t.error("", "two keys have the same hash")
    table.check_unknown()
    return ApiConfig(enabled=enabled, keys=tuple(keys))
