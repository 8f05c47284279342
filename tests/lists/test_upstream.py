"""Local registrations queued and pushed to a fake national platform on 127.0.0.1: retries,
idempotency keys, permanent refusals and the audit trail."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from aiohttp import web

from dncgate.backoff import EQUAL_JITTER, Backoff
from dncgate.lists.sources import HttpSettings, HttpSource
from dncgate.lists.upstream import RETRY_BACKOFF, Outbox, Pusher, RegistrationError


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakePlatform:
    """Answers 503 to the first attempt of every key, then 201; 422 for numbers it refuses."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.registered: dict[str, dict[str, str]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers["Idempotency-Key"]
        body = await request.json()
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if body["number"].endswith("0199"):
            return web.json_response({"error": "number not in service"}, status=422)
        if self.attempts[key] == 1:
            return web.json_response({"error": "try later"}, status=503)
        self.registered.setdefault(key, body)  # idempotent: a repeat of a key changes nothing
        return web.json_response({"ok": True}, status=201)


async def test_registrations_are_pushed_with_retries_and_an_audit_trail(tmp_path: Path) -> None:
    platform = FakePlatform()
    app = web.Application()
    app.router.add_post("/registrations", platform.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite3", region="US", max_attempts=3, clock=clock,
                    backoff=Backoff(initial=0.01, maximum=0.02, jitter=EQUAL_JITTER, rng=random.Random(3)))
    source = HttpSource(HttpSettings(f"http://127.0.0.1:{port}/", push_deadline=5))
    try:
        key = await outbox.enqueue_registration("(201) 555-0123", channel="ivr", key="ivr-call-1")
        assert await outbox.enqueue_registration("+12015550123", channel="ivr", key="ivr-call-1") == key
        refused = await outbox.enqueue_registration("+12015550199", channel="api", action="remove")
        with pytest.raises(RegistrationError, match="number"):
            await outbox.enqueue_registration("12", channel="api")
        with pytest.raises(RegistrationError, match="action"):
            await outbox.enqueue_registration("+12015550124", channel="api", action="maybe")
        pusher = Pusher(outbox, source)
        assert await pusher.push_once() == 0  # 503 for the first, 422 for the refused one
        assert await outbox.counts() == {"queued": 1, "refused": 1}
        assert await pusher.push_once() == 0  # not due yet: backoff
        clock.now += 0.05
        assert await pusher.push_once() == 1
        assert await outbox.counts() == {"pushed": 1, "refused": 1}
        assert platform.registered == {"ivr-call-1": {
            "key": "ivr-call-1", "number": "+12015550123", "action": "add", "channel": "ivr",
            "at": platform.registered["ivr-call-1"]["at"], "category": None}}
        assert platform.attempts == {"ivr-call-1": 2, refused: 1}
        assert [e for e, _ in await outbox.trail("ivr-call-1")] == ["queued", "duplicate", "retry", "pushed"]
        assert [e for e, _ in await outbox.trail(refused)] == ["queued", "refused"]
        assert "422" in (await outbox.trail(refused))[-1][1]
    finally:
        await source.close()
        await outbox.close()
        await runner.cleanup()


async def test_unreachable_platform_gives_up_after_max_attempts(tmp_path: Path) -> None:
    from tests.conftest import free_port

    outbox = Outbox(tmp_path / "o.sqlite3", backoff=Backoff(initial=0.0, maximum=0.0), max_attempts=2)
    source = HttpSource(HttpSettings(f"http://127.0.0.1:{free_port()}/", connect_timeout=1, push_deadline=2))
    try:
        key = await outbox.enqueue_registration("+12015550150", channel="api")
        pusher = Pusher(outbox, source)
        await pusher.push_once()
        await pusher.push_once()
        assert await outbox.counts() == {"failed": 1}
        events = await outbox.trail(key)
        assert [e for e, _ in events] == ["queued", "retry", "gave_up"]
        assert "ClientConnectorError" in events[1][1]
    finally:
        await source.close()
        await outbox.close()


def test_a_failed_push_is_retried_after_the_registration_backoff() -> None:
    # 2 s doubling to an hour; each delay half to all of that ("equal jitter").
    backoff = Backoff(initial=RETRY_BACKOFF.initial, maximum=RETRY_BACKOFF.maximum, jitter=RETRY_BACKOFF.jitter,
                      rng=random.Random(5))
    for attempt, full in [(0, 2.0), (1, 4.0), (10, 2048.0), (11, 3600.0), (19, 3600.0)]:
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays), attempt
    assert RETRY_BACKOFF.multipliers == (0.5, 1.0)
