"""``dncgate serve`` with ``[ami]`` pointed at the lab's Asterisk 22: real calls through the real gate
become call records on the gate's stream, and the feed's state shows in /healthz and /metrics.

The gate runs in this process (tests/conftest.py ``serving``, the same ``serve()`` the command
runs) so the test can subscribe to ``Running.calls`` as early warning will; Asterisk sends the
calls' FastAGI checks to it and its manager events to the feed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dncgate.events import CallRecord
from dncgate.settings import load
from tests.conftest import RedisServer, serving
from tests.e2e.gate_process import CLEAR, LISTED, STANDARD_LISTS, gate_config, load_lists
from tests.e2e.lab import AsteriskLab
from tests.feed_serving import healthz, metric_lines

pytestmark = pytest.mark.e2e


async def test_serve_publishes_the_calls_asterisk_reports(lab: AsteriskLab, redis_server: RedisServer,
                                                         tmp_path: Path) -> None:
    await asyncio.to_thread(load_lists, redis_server.url, STANDARD_LISTS)
    path = tmp_path / "dncgate.toml"
    path.write_text(gate_config(redis_server.url, agi_port=0, http_port=0, spool_dir=tmp_path / "spool") + f"""
[ami]
enabled = true
port = {lab.ami_port}
username = "{lab.ami_user}"
secret = "{lab.ami_secret}"
""", encoding="utf-8")
    async with serving(load(path, environ={})) as running:
        assert running.feeds is not None
        assert running.agi_port is not None
        feed = running.feeds.feeds["ami"]
        await asyncio.wait_for(feed.wait_for(lambda f: f.state == "connected"), 20)
        records = running.calls.subscribe()
        await asyncio.to_thread(lab.use_gate, running.agi_port)

        rejected_call = await asyncio.to_thread(lab.place_call, LISTED, tenant="acme", purpose="marketing")
        assert rejected_call.final_code == 607, rejected_call  # acme's code for a listed number
        rejected: CallRecord = await asyncio.wait_for(anext(records), 20)
        completed_call = await asyncio.to_thread(lab.place_call, CLEAR, tenant="acme", purpose="marketing")
        assert completed_call.final_code == 200, completed_call
        completed: CallRecord = await asyncio.wait_for(anext(records), 20)
        await records.aclose()

        assert (rejected.switch, rejected.sip_code, rejected.answer, rejected.billsec) == ("asterisk", 607, None, 0)
        assert rejected.callee == LISTED, rejected
        # Asterisk 22 reports PJSIPHangup(607) with Q.850 cause 127 (its SIP -> Q.850 table has no 607)
        assert (rejected.hangup_cause, rejected.hangup_cause_name) == (127, "INTERWORKING")
        assert rejected.originator
        assert rejected.start <= rejected.end
        assert completed.callee == CLEAR, completed
        assert (completed.hangup_cause, completed.hangup_cause_name) == (16, "NORMAL_CLEARING")
        assert completed.answer is not None
        assert completed.start <= completed.answer <= completed.end
        assert completed.call_id != rejected.call_id

        status, body = await healthz(running.http_port)
        assert (status, body["status"], body["doors"]["agi"]) == (200, "ok", True)
        ami = body["feeds"]["ami"]
        assert (ami["state"], ami["records"], ami["connects"], ami["bad_events"]) == ("connected", 2, 1, 0)
        assert ami["address"] == f"127.0.0.1:{lab.ami_port}"
        assert ami["last_event"] is not None
        assert await metric_lines(running.http_port, "dncgate_feed_") >= {
            'dncgate_feed_up{feed="ami"} 1.0', 'dncgate_feed_records_total{feed="ami"} 2.0'}
