"""Operator accounts of the console on Redis: one hash, ``dnc:{console}:operators``, name -> JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from dncgate.operators import Operator
from dncgate.store.errors import StoreCorrupt, StoreUnavailable
from dncgate.store.redis.conn import Client, RedisSettings, close_client, make_client, redis_errors

OPERATORS = "dnc:{console}:operators"
_T = TypeVar("_T")


class RedisOperatorStore:
    """``OperatorStore`` on Redis."""

    def __init__(self, client: Client, *, deadline: float = 5.0) -> None:
        self._r = client
        self._deadline = deadline

    @classmethod
    def connect(cls, url: str, *, timeout: float = 2.0, cluster: bool = False) -> RedisOperatorStore:
        settings = RedisSettings(url=url, cluster=cluster, socket_timeout=timeout, connect_timeout=timeout,
                                 client_name="dncgate-operators")
        return cls(make_client(settings), deadline=timeout * 3)

    async def _bounded(self, what: str, operation: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._deadline):
                with redis_errors(what):
                    return await operation
        except TimeoutError as exc:
            raise StoreUnavailable(f"redis {what}: no answer within {self._deadline} s") from exc

    async def operator(self, name: str) -> Operator | None:
        raw = await self._bounded("operator", self._r.hget(OPERATORS, name))
        return _decode(raw) if raw is not None else None

    async def put_operator(self, operator: Operator) -> None:
        await self._bounded("operator put", self._r.hset(OPERATORS, operator.name, operator.to_json()))

    async def remove_operator(self, name: str) -> bool:
        removed = await self._bounded("operator remove", self._r.hdel(OPERATORS, name))
        return bool(removed)

    async def operators(self) -> list[Operator]:
        raws = await self._bounded("operators", self._r.hgetall(OPERATORS))
        return sorted((_decode(raw) for raw in raws.values()), key=lambda o: o.name)

    async def close(self) -> None:
        await close_client(self._r)


def _decode(raw: object) -> Operator:
    try:
        return Operator.from_json(raw)  # type: ignore[arg-type]
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreCorrupt(f"{OPERATORS}: not an operator account ({exc})") from exc
