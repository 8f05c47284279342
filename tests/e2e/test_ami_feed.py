"""The AMI feed against the real Asterisk 22 lab: one rejected and one completed call -> CallRecords."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from dncgate.ami.calls import CallTracker
from dncgate.ami.client import AmiClient
from dncgate.ami.settings import AmiSettings
from dncgate.events import CallEventStream, CallRecord
from tests.e2e.fake_gate import FakeGate
from tests.e2e.lab import AsteriskLab

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake_gate(lab: AsteriskLab) -> Iterator[FakeGate]:
    with FakeGate() as gate:
        lab.use_gate(gate.port)
        yield gate


@pytest.fixture
async def feed(lab: AsteriskLab) -> AsyncIterator[asyncio.Queue[CallRecord]]:
    stream = CallEventStream()
    records: asyncio.Queue[CallRecord] = asyncio.Queue()

    async def pump() -> None:
        async for record in stream.subscribe():
            records.put_nowait(record)

    pumping = asyncio.ensure_future(pump())
    await asyncio.sleep(0)
    client = AmiClient(AmiSettings(username=lab.ami_user, secret=lab.ami_secret, port=lab.ami_port))
    tracker = CallTracker(stream)
    tracker.attach(client)
    await client.connect()
    try:
        yield records
    finally:
        await client.close()
        tracker.close()
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)


async def test_rejected_and_completed_calls_become_records(
    lab: AsteriskLab, fake_gate: FakeGate, feed: asyncio.Queue[CallRecord]
) -> None:
    rejected_call = await asyncio.to_thread(lab.place_call, "15551230603")
    assert rejected_call.final_code == 603, rejected_call
    rejected = await asyncio.wait_for(feed.get(), 10)

    completed_call = await asyncio.to_thread(lab.place_call, "15551230100")
    assert completed_call.final_code == 200, completed_call
    completed = await asyncio.wait_for(feed.get(), 10)

    assert rejected.switch == "asterisk"
    assert rejected.callee == "15551230603"
    assert (rejected.hangup_cause, rejected.hangup_cause_name, rejected.sip_code) == (21, "CALL_REJECTED", 603)
    assert rejected.answer is None
    assert rejected.billsec == 0
    assert rejected.originator
    assert rejected.start <= rejected.end

    assert completed.callee == "15551230100"
    assert (completed.hangup_cause, completed.hangup_cause_name) == (16, "NORMAL_CLEARING")
    assert completed.answer is not None
    assert completed.billsec >= 0
    assert completed.start <= completed.answer <= completed.end
    assert completed.call_id != rejected.call_id
    assert feed.empty()
