"""What every API handler needs: the gate, the ledger, the keys; and the caller's tenant from its key."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from dncgate.api.errors import ApiError, json_body
from dncgate.api.keys import ApiKey, hash_key
from dncgate.api.records import evidence_of
from dncgate.consent.ledger import Ledger
from dncgate.consent.model import Action, LedgerError, LedgerEvent
from dncgate.gate import Gate
from dncgate.messages.service import MessageService
from dncgate.model import TenantPolicy
from dncgate.numbers import Subscriber, normalise
from dncgate.settings import ApiSettings
from dncgate.store.errors import StoreError

_T = TypeVar("_T")
WRITE_DEADLINE = 2.0  # every ledger write and lookup of the API


@dataclass(frozen=True, slots=True)
class ApiContext:
    gate: Gate
    ledger: Ledger
    tenants: Mapping[str, TenantPolicy]
    keys: dict[str, ApiKey] = field(default_factory=dict)  # sha256 -> key
    write_deadline: float = WRITE_DEADLINE
    messages: MessageService | None = None  # [messages] enabled: POST /v1/messages/check

    @classmethod
    def of(cls, gate: Gate, ledger: Ledger, settings: ApiSettings, *,
           messages: MessageService | None = None) -> ApiContext:
        return cls(gate, ledger, gate.tenants, _keys_of(settings), messages=messages)

    def replace_keys(self, settings: ApiSettings) -> None:
        """``[api.keys]`` reloaded: the next request is checked against these (no await in between)."""
        keys = _keys_of(settings)
        self.keys.clear()
        self.keys.update(keys)

    async def bounded(self, operation: Awaitable[_T]) -> _T:
        """Run a ledger operation under the API's deadline; store trouble is a 503, bad records a 422."""
        try:
            async with asyncio.timeout(self.write_deadline):
                return await operation
        except TimeoutError:
            raise ApiError(503, "store_unavailable", f"no answer within {self.write_deadline} s") from None
        except LedgerError as exc:
            raise ApiError(422, "invalid_record", str(exc)) from None
        except StoreError as exc:
            raise ApiError(503, "store_unavailable", str(exc)) from None


CONTEXT = web.AppKey("dncgate_api", ApiContext)


def _keys_of(settings: ApiSettings) -> dict[str, ApiKey]:
    """sha256 -> key, from ``[api.keys.ID]``."""
    keys = [ApiKey(key_id, entry.tenant, entry.sha256.lower()) for key_id, entry in settings.keys.items()]
    return {k.sha256: k for k in keys}


@dataclass(frozen=True, slots=True)
class Caller:
    key: ApiKey
    tenant: TenantPolicy


def caller(request: web.Request) -> tuple[ApiContext, Caller]:
    """The context and the authenticated caller. The tenant comes from the key, never from the request."""
    context = request.app[CONTEXT]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <api key>'")
    key = context.keys.get(hash_key(token.strip()))
    if key is None:
        raise ApiError(401, "unauthorized", "unknown API key")
    tenant = context.tenants.get(key.tenant)
    if tenant is None:
        raise ApiError(403, "forbidden", "the key's tenant is not configured")
    return context, Caller(key, tenant)


def callee_of(tenant: TenantPolicy, raw: object, name: str = "number") -> Subscriber:
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(422, "missing_field" if not raw else "invalid_field", f"{name}: a phone number is required")
    callee = normalise(raw[:64], tenant.dial_plan)
    if not isinstance(callee, Subscriber):
        region = tenant.dial_plan.region
        raise ApiError(422, "invalid_number", f"{name}: {raw[:64]!r} is not a subscriber number in {region}")
    return callee


@dataclass(frozen=True, slots=True)
class Posted:
    """A POST that records a ledger event: its context, caller, JSON body, and the ``number`` it names."""

    context: ApiContext
    who: Caller
    data: dict[str, Any]
    callee: Subscriber

    def event(
        self, action: Action, *, entity: str = "", categories: tuple[str, ...] = (),
        valid_from: datetime | None = None, expires_at: datetime | None = None,
    ) -> LedgerEvent:
        """The event for this caller's tenant and callee, with the body's evidence and the key named."""
        return LedgerEvent(
            tenant=self.who.tenant.name, action=action, callee=self.callee.e164, entity=entity,
            categories=categories, valid_from=valid_from, expires_at=expires_at, evidence=evidence_of(self.data),
            detail=f"api key {self.who.key.key_id}",
        )


async def posted(request: web.Request) -> Posted:
    context, who = caller(request)
    data = await json_body(request)
    return Posted(context, who, data, callee_of(who.tenant, data.get("number")))
