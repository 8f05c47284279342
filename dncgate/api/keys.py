"""The HTTP API's keys: made by ``dncgate api-key new``, configured by their hash (``[api.keys.ID]``).

    [api]
    enabled = true
    [api.keys.crm-acme]          # a key id of your choosing (it appears in logs, never the key)
    tenant = "acme"
    sha256 = "9f86d0..."         # sha256 of the key: `dncgate api-key new --tenant acme` prints both
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "dncg_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    tenant: str
    sha256: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key: 32 random bytes. Only its SHA-256 goes into the configuration."""
    return KEY_PREFIX + secrets.token_urlsafe(32)
