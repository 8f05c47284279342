"""Operator accounts of the console: who may sign in, with which role, for which tenants.

A password is kept only as ``hashlib.scrypt`` (memory-hard: n=2**14, r=8, p=1, 16 MiB a check;
a 16-byte random salt per account), written ``scrypt$n$r$p$salt$hash`` so the cost can be raised
later without losing old accounts. Failed sign-ins lock the account with the one backoff
(``dncgate.backoff``): after ``FREE_FAILURES`` the account is locked 2 s, doubling to 15 min.

The stores keep accounts in their own backend (``store.sqlite.operators``, ``store.redis.operators``);
this module is the model both read and the console and the CLI act on, so it imports no room but
the bottom ones.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from dncgate.backoff import Backoff
from dncgate.errors import DncgateError

NAME = re.compile(r"[a-z0-9][a-z0-9_.@-]{0,63}")
TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # scrypt reads it whole: a megabyte "password" is refused before it is hashed
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
FREE_FAILURES = 3  # wrong passwords in a row before the account locks
LOCKOUT = Backoff(initial=2.0, factor=2.0, maximum=900.0, jitter=0.0)


class OperatorError(DncgateError, ValueError):
    """An account that cannot be created or changed as asked (the message says why)."""


class Role(enum.StrEnum):
    VIEWER = "viewer"  # reads every page of its tenants
    OPERATOR = "operator"  # ... and acts: alerts, cases, complaints, a subscriber's request
    ADMIN = "admin"  # ... and sees every tenant

    def can_act(self) -> bool:
        return self is not Role.VIEWER


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role
    tenants: tuple[str, ...]  # the tenants it sees; an admin sees all ("*")
    password: str  # scrypt$n$r$p$salt$hash
    created_at: str
    failures: int = 0
    locked_until: str = ""  # ISO 8601; "" when not locked

    def sees(self, tenant: str) -> bool:
        return self.role is Role.ADMIN or "*" in self.tenants or tenant in self.tenants

    def visible(self, configured: Sequence[str]) -> list[str]:
        """The configured tenants this operator may see, in order."""
        return [t for t in configured if self.sees(t)]

    def locked_at(self, now: datetime) -> datetime | None:
        """Until when the account is locked at ``now`` (None: it is not)."""
        if not self.locked_until:
            return None
        until = datetime.fromisoformat(self.locked_until)
        return until if until > now else None

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "role": self.role.value, "tenants": list(self.tenants),
                           "password": self.password, "created_at": self.created_at, "failures": self.failures,
                           "locked_until": self.locked_until}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Operator:
        data: dict[str, Any] = json.loads(text)
        return cls(name=str(data["name"]), role=Role(data["role"]), tenants=tuple(data["tenants"]),
                   password=str(data["password"]), created_at=str(data["created_at"]),
                   failures=int(data.get("failures", 0)), locked_until=str(data.get("locked_until", "")))


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise OperatorError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(check_password(password).encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    """Constant-time comparison; a malformed stored hash or an over-long password never matches."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt" or len(password) > MAX_PASSWORD:
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2, maxmem=64 << 20)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def new_operator(name: str, role: Role | str, tenants: Sequence[str], password: str, now: datetime) -> Operator:
    if not NAME.fullmatch(name):
        raise OperatorError(f"operator name {name!r}: 1-64 of a-z 0-9 _ . @ - (starting with a letter or digit)")
    try:
        role = Role(role)
    except ValueError:
        raise OperatorError(f"role {role!r}: one of {', '.join(r.value for r in Role)}") from None
    scopes = tuple(dict.fromkeys(tenants))
    if role is not Role.ADMIN and not scopes:
        raise OperatorError("a viewer or operator is scoped to at least one tenant (--tenant NAME)")
    for tenant in scopes:
        if tenant != "*" and not TENANT.fullmatch(tenant):
            raise OperatorError(f"tenant {tenant!r}: letters, digits, _ . -")
    return Operator(name, role, scopes, hash_password(password), now.isoformat(timespec="seconds"))


@dataclass(frozen=True, slots=True)
class SignIn:
    """What one sign-in attempt comes to: the operator (None: refused), and the account to store."""

    operator: Operator | None
    updated: Operator | None  # the failure count or lock changed: write it back
    locked_until: datetime | None = None
    reason: str = ""


def attempt(account: Operator | None, password: str, now: datetime, *, policy: Backoff = LOCKOUT,
            free_failures: int = FREE_FAILURES) -> SignIn:
    """Check ``password`` against ``account`` at ``now``: a locked account is refused without checking."""
    if account is None:
        password_matches(password, _DUMMY)  # the same cost as a real check: no timing tells names apart
        return SignIn(None, None, reason="unknown")
    locked = account.locked_at(now)
    if locked is not None:
        return SignIn(None, None, locked, reason="locked")
    if password_matches(password, account.password):
        cleared = replace(account, failures=0, locked_until="") if account.failures or account.locked_until else None
        return SignIn(account, cleared)
    failures = account.failures + 1
    until = None
    if failures >= free_failures:
        until = now + timedelta(seconds=policy.delay(failures - free_failures))
    updated = replace(account, failures=failures, locked_until=until.isoformat() if until else "")
    return SignIn(None, updated, until, reason="password")


_DUMMY = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * 16}${'00' * 32}"


class OperatorStore(Protocol):
    """Operator accounts in a store backend. Every method may raise ``StoreError``."""

    async def operator(self, name: str) -> Operator | None: ...

    async def put_operator(self, operator: Operator) -> None:
        """Create or replace the account."""
        ...

    async def remove_operator(self, name: str) -> bool:
        """Remove the account; False when there was none."""
        ...

    async def operators(self) -> list[Operator]:
        """Every account, by name."""
        ...

    async def close(self) -> None: ...


@dataclass
class Roster:
    """The accounts the console checks sign-ins against (the store), and the lockout policy."""

    store: OperatorStore
    policy: Backoff = field(default=LOCKOUT)
    free_failures: int = FREE_FAILURES

    async def sign_in(self, name: str, password: str, now: datetime) -> SignIn:
        account = await self.store.operator(name)
        # scrypt takes some 50 ms of CPU: on a thread, so the calls on the event loop wait for none of it
        result = await asyncio.to_thread(attempt, account, password, now, policy=self.policy,
                                         free_failures=self.free_failures)
        if result.updated is not None:
            await self.store.put_operator(result.updated)
        return result
