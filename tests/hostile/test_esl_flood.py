"""A flood of large events on the event socket of a running serve (issue 11 items 11 and 12): each
call's queue holds at most 1 MiB, nothing is left when the call ends, the reset that ends it leaves
no "Future exception was never retrieved", and the other doors answer.
Measured by the serve process's RSS from /proc, never by time."""

from __future__ import annotations

from tests.hostile.conftest import Hostile
from tests.hostile.peers import esl_event_flood, memory_of
from tests.polls import poll_until

SESSIONS, EVENTS, BODY = 4, 40, 512 * 1024  # 80 MB of events; each call's 20 MB would stay without the caps
MB = 1 << 20


async def test_an_event_flood_leaves_no_memory_behind(hostile: Hostile) -> None:
    answers = await hostile.answers()
    assert answers.all, answers.detail
    rss_before, _ = memory_of(hostile.pid)
    for _ in range(SESSIONS):
        await esl_event_flood(hostile.esl_port, EVENTS, BODY)
    answers = await hostile.answers()  # a call after the floods: the last flood's session has ended
    assert answers.all, answers.detail
    rss_after, _ = memory_of(hostile.pid)
    assert rss_after - rss_before < 32 * MB, f"RSS grew {(rss_after - rss_before) / MB:.0f} MB"
    def closed_floods() -> list[dict[str, object]]:
        return [e for e in hostile.events("esl.session.closed") if e.get("outcome") != "ok"]

    # a session's close is logged once serve has seen the reset: not always before the probe's answer
    await poll_until(lambda: len(closed_floods()) >= SESSIONS, "every flooded session's close logged")
    closed = closed_floods()
    assert len(closed) == SESSIONS
    assert all(int(str(e["dropped_events"])) >= EVENTS - 2 for e in closed), closed
    # each flood ends in a reset with the gate's command in flight (issue 11 item 12)
    assert "Future exception was never retrieved" not in hostile.log_text()
    assert "Traceback" not in hostile.log_text()
