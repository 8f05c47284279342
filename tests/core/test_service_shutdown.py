"""``dncgate serve`` stops within its bound with work in flight on every door."""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from dncgate.model import TenantPolicy
from dncgate.numbers import DialPlan
from dncgate.service import AUDIT_GRACE, SHUTDOWN_GRACE
from dncgate.settings import AgiSettings, EslSettings, HttpServerSettings, Settings, StoreSettings
from tests.conftest import serving

HEADER = (
    "agi_network: yes\nagi_network_script: check?tenant=default&purpose=marketing\n"
    "agi_request: agi://127.0.0.1/check?tenant=default&purpose=marketing\nagi_channel: PJSIP/uac-1\n"
    "agi_uniqueid: 1.1\nagi_callerid: 4001234567\nagi_extension: 2015550123\nagi_arg_1: 2015550123\n\n"
)


async def test_doors_close_together_within_the_shutdown_bound(tmp_path: Path) -> None:
    config = Settings(
        source="test", store=StoreSettings(path=tmp_path / "serve.sqlite3"),
        tenants={"default": TenantPolicy(name="default", dial_plan=DialPlan(region="US"))},
        agi=AgiSettings(enabled=True, port=0), esl=EslSettings(enabled=True, port=0),
        http=HttpServerSettings(enabled=True, port=0),
    )
    writers: list[asyncio.StreamWriter] = []
    try:
        # stop_within: a hang guard; that the doors close together is shown by the log's order
        with capture_logs() as logs:
            async with serving(config, stop_within=2 * SHUTDOWN_GRACE + AUDIT_GRACE + 60) as running:
                assert running.agi_port
                assert running.esl_port
                # An Asterisk that never answers the verdict, and a FreeSWITCH that connects and says
                # nothing: both sessions are still running when the stop comes.
                agi_reader, agi_writer = await asyncio.open_connection("127.0.0.1", running.agi_port)
                writers.append(agi_writer)
                agi_writer.write(HEADER.encode())
                assert (await asyncio.wait_for(agi_reader.readline(), 30)).startswith(b"EXEC MSet")
                esl_reader, esl_writer = await asyncio.open_connection("127.0.0.1", running.esl_port)
                writers.append(esl_writer)
                assert await asyncio.wait_for(esl_reader.readline(), 30)  # "connect": waits for our reply
    finally:
        for writer in writers:
            writer.close()
    # Each door has SHUTDOWN_GRACE, but they close at the same time, not one after another: both
    # start closing before either has closed, and each cancels its stuck session (issue 11 item 20:
    # shown by the order of events, not by the time it took).
    closing = [(e["event"], e["door"]) for e in logs if e["event"].startswith("door.server.")]
    first_closed = next(i for i, (event, _) in enumerate(closing) if event == "door.server.closed")
    assert {door for event, door in closing[:first_closed] if event == "door.server.closing"} >= {"agi", "esl"}
    cancelled = {e["door"]: e["count"] for e in logs if e["event"] == "door.server.sessions_cancelled"}
    assert cancelled.get("agi") == 1
    # The ESL session's own deadline for the reply to `connect` (5 s, OutboundConfig) is as long as
    # the door's grace and started first, so it ends that session about when the grace runs out:
    # cancelled by the door or timed out by itself, it must be over before the door says closed.
    events = [(e["event"], e.get("door")) for e in logs]
    esl_closed = events.index(("door.server.closed", "esl"))
    assert cancelled.get("esl") == 1 or ("esl.session.timeout", "esl") in events[:esl_closed]
    assert ("esl.session.closed", "esl") in events[:esl_closed] or cancelled.get("esl") == 1
    assert SHUTDOWN_GRACE + AUDIT_GRACE < 10  # Docker's default stop timeout
