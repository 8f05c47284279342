"""``dncgate serve`` with ``[ami]``: the Asterisk call feed against the recorded AMI session.

The gate is ready for calls whatever the feed's state; /healthz shows the feed without failing
on it, /metrics counts it; a lost manager connection is reported down and comes back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.ami.ami_helpers import COMPLETED, REJECTED, FakeAmi, transcript_parts
from tests.conftest import free_port, serving
from tests.feed_serving import feed_config, healthz, metric_lines


def ami_table(port: int, *, wrong_secret: bool = False) -> str:
    secret = "wrong" if wrong_secret else FakeAmi.secret
    return f'[ami]\nenabled = true\nport = {port}\nusername = "e2e"\nsecret = "{secret}"\n'


async def test_records_state_and_reconnect(tmp_path: Path, fake: FakeAmi) -> None:
    async with serving(feed_config(tmp_path, ami_table(fake.port))) as running:
        assert running.feeds is not None
        feed = running.feeds.feeds["ami"]
        await asyncio.wait_for(feed.wait_for(lambda f: f.state == "connected"), 10)
        records = running.calls.subscribe()  # what early warning will do
        _, events = transcript_parts()
        fake.send(events)  # the recorded calls: a rejected (603) and a completed one
        got = [await asyncio.wait_for(anext(records), 10) for _ in range(2)]
        await records.aclose()
        assert got == [REJECTED, COMPLETED]

        status, body = await healthz(running.http_port)
        assert (status, body["status"]) == (200, "ok")
        ami = body["feeds"]["ami"]
        assert (ami["state"], ami["address"], ami["records"], ami["connects"], ami["reconnects"]) == (
            "connected", f"127.0.0.1:{fake.port}", 2, 1, 0)
        assert ami["last_event"] is not None
        assert ami["bad_events"] == 0
        assert await metric_lines(running.http_port, "dncgate_feed_") >= {
            'dncgate_feed_up{feed="ami"} 1.0', 'dncgate_feed_records_total{feed="ami"} 2.0',
            'dncgate_feed_reconnects_total{feed="ami"} 0.0'}

        fake.refuse_connections = 1_000_000  # Asterisk restarting: it drops us and closes new connections
        fake.drop()
        await asyncio.wait_for(feed.wait_for(lambda f: "before answering Login" in f.last_error), 10)
        status, body = await healthz(running.http_port)
        assert (status, body["status"], body["feeds"]["ami"]["state"]) == (200, "ok", "down")
        assert 'dncgate_feed_up{feed="ami"} 0.0' in await metric_lines(running.http_port, "dncgate_feed_up")

        fake.refuse_connections = 0  # back up: the next attempt logs in
        await asyncio.wait_for(feed.wait_for(lambda f: f.state == "connected"), 30)
        _, body = await healthz(running.http_port)
        assert (body["feeds"]["ami"]["connects"], body["feeds"]["ami"]["reconnects"]) == (2, 1)
        assert body["feeds"]["ami"]["last_error"] is None


@pytest.mark.parametrize("refused", [False, True], ids=["nobody-listening", "login-refused"])
async def test_the_gate_is_ready_while_the_manager_is_unusable(tmp_path: Path, fake: FakeAmi, refused: bool) -> None:
    table = ami_table(fake.port, wrong_secret=True) if refused else ami_table(free_port())
    async with serving(feed_config(tmp_path, table)) as running:
        assert running.agi_port  # the call path is up
        assert running.feeds is not None
        feed = running.feeds.feeds["ami"]
        await asyncio.wait_for(feed.wait_for(lambda f: f.state == "down"), 10)
        status, body = await healthz(running.http_port)
        assert (status, body["status"], body["store"]) == (200, "ok", "ok")  # a feed down does not fail it
        ami = body["feeds"]["ami"]
        assert (ami["state"], ami["connects"], ami["records"]) == ("down", 0, 0)
        assert ("login refused" if refused else "failed") in ami["last_error"]
        assert 'dncgate_feed_up{feed="ami"} 0.0' in await metric_lines(running.http_port, "dncgate_feed_up")
