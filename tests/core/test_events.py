from __future__ import annotations

from datetime import UTC, datetime

from dncgate.events import CallEventStream, CallRecord

AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def record(call_id: str) -> CallRecord:
    return CallRecord("asterisk", call_id, "4001234567", "", "+12015550123", AT, None, AT, 0, 21, "CALL_REJECTED", 603)


async def test_subscriber_sees_records_published_before_its_first_read() -> None:
    stream = CallEventStream()
    records = stream.subscribe()
    stream.publish(record("a"))
    stream.publish(record("b"))
    assert (await anext(records)).call_id == "a"
    assert (await anext(records)).call_id == "b"
    await records.aclose()  # type: ignore[attr-defined]
    stream.publish(record("c"))
    assert stream.published == 3


async def test_a_lagging_subscriber_loses_the_oldest_and_it_is_counted() -> None:
    stream = CallEventStream(buffer=2)
    records = stream.subscribe()
    for name in "abc":
        stream.publish(record(name))
    assert stream.dropped == 1
    assert [(await anext(records)).call_id for _ in range(2)] == ["b", "c"]
    assert record("x").as_dict()["start"] == AT.isoformat()
    await records.aclose()  # type: ignore[attr-defined]
