"""Notices and provisioning calls: a JSON POST with a deadline per attempt, retried with the one
backoff, and what happened recorded (status code, attempts, error) as a ``delivery`` transition.

E-mail is not sent (yet): a notice goes to ``[enforcement.notice] webhook_url``; a carrier that
notifies by mail points it at its own mail gateway.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import structlog

from dncgate.backoff import Backoff
from dncgate.settings.enforcement import NoticeSettings

log = structlog.get_logger("dncgate.enforcement.notices")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Delivery:
    url: str
    status: int | None  # the last HTTP status (None: no answer)
    attempts: int
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "attempts": self.attempts, "error": self.error,
                "delivered": self.delivered}


_NOTICE = NoticeSettings()  # [enforcement.notice]'s defaults


class Notifier(Protocol):
    async def post(self, url: str, payload: dict[str, Any]) -> Delivery: ...


class WebhookNotifier:
    """POSTs JSON; retries on no answer, 408, 429 and 5xx, up to ``attempts``."""

    def __init__(self, *, deadline: float = _NOTICE.deadline, attempts: int = _NOTICE.attempts,
                 max_body_bytes: int = _NOTICE.max_body_bytes,
                 backoff: Backoff | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.deadline, self.attempts, self.max_body_bytes = deadline, attempts, max_body_bytes
        self.backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self._sleep = sleep

    async def post(self, url: str, payload: dict[str, Any]) -> Delivery:
        body = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        if len(body) > self.max_body_bytes:
            return Delivery(url, None, 0, f"notice of {len(body)} bytes exceeds {self.max_body_bytes}")
        status: int | None = None
        error = ""
        timeout = aiohttp.ClientTimeout(total=self.deadline)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(self.attempts):
                if attempt:
                    await self._sleep(self.backoff.delay(attempt - 1))
                try:
                    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as answer:
                        status, error = answer.status, ""
                        await answer.content.read(4096)  # bounded: the answer's body is not used
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    status, error = None, f"{type(exc).__name__}: {exc}"[:300]
                if status is not None and not _retryable(status):
                    break
                log.warning("enforcement.notice_retry", url=url, attempt=attempt + 1, status=status, error=error)
        return Delivery(url, status, attempt + 1, error)


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500
