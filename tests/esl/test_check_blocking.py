"""The reject against what a real FreeSWITCH 1.11.1 did when the announcement blocks.

Recorded (``real-switch-facts.md``, "Media timer"): on a profile without ``rtp-timer-name`` a
caller that sends no RTP in early media blocks the ``playback``; no CHANNEL_EXECUTE_COMPLETE comes,
and a ``sendmsg hangup`` sent meanwhile gets ``+OK`` and is queued behind it, so the call ends only
when the caller gives up (487).  The fake plays that (``media_timer=False``); the gate must still
end the call with the tenant's code, through the API (``uuid_kill``), and the switch must end it
on its own (``sched_hangup``) when the gate is gone.  Deadlines are short settings, not waits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_freeswitch import DIALPLAN, STUCK, FakeFreeSwitch, with_destination, with_variables

from dncgate.esl.check import reject_guard_delay
from dncgate.esl.outbound import OutboundSession
from dncgate.settings import EslSettings
from dncgate.store.sqlite import SqliteListStore
from tests.esl.test_check import (
    DECLINED,
    LISTED,
    REJECT_REPLY,
    REJECT_UUID,
    SOUNDS,
    Lab,
    _lab,
    events,
    guard,
    multiset,
    one,
    shorts,
)

# Only the deadline a test is about is short; the others keep their defaults, so a busy machine
# cannot make one fire that the test expects not to (a 50 ms settle did, once, in a full run).
QUICK = EslSettings(strip_prefix="8", sounds_dir=SOUNDS)
BLOCKED = EslSettings(strip_prefix="8", sounds_dir=SOUNDS, playback_deadline=0.05)
CASES = [("default", "CALL_REJECTED", 603), ("unwanted", "UNWANTED", 607), ("rejected", "CALL_REJECTED", 608)]


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    async for value in _lab(tmp_path, SqliteListStore(tmp_path / "esl.sqlite3")):
        yield value


def listed(tenant: str = "default") -> bytes:
    return with_variables(with_destination(REJECT_REPLY, "8" + LISTED), dncgate_tenant=tenant)


async def test_recorded_trap_a_hangup_queued_behind_a_blocked_playback_never_runs(lab: Lab) -> None:
    """What the gate used to send (hangup after the playback deadline) leaves the call stuck."""

    async def old_reject(session: OutboundSession) -> None:
        await session.myevents()
        await session.execute("pre_answer", wait=True)
        await session.execute("playback", DECLINED)  # +OK; its CHANNEL_EXECUTE_COMPLETE never comes
        reply = await session.hangup("CALL_REJECTED")
        assert reply.ok  # accepted ...

    trace, _ = await lab.call(listed(), peer=FakeFreeSwitch(listed(), media_timer=False), handler=old_reject)
    assert [c.short() for c in trace.queued] == ["hangup CALL_REJECTED"]  # ... queued, never run
    assert trace.outcome == STUCK
    assert trace.sip_code == 487  # the caller gave up


@pytest.mark.parametrize(("tenant", "cause", "code"), CASES)
async def test_blocked_announcement_is_cut_through_the_api(lab: Lab, tenant: str, cause: str, code: int) -> None:
    trace, logs = await lab.call(listed(tenant), BLOCKED, peer=FakeFreeSwitch(listed(tenant), media_timer=False))
    delay = reject_guard_delay(BLOCKED)
    assert shorts(trace) == ["myevents", "execute multiset", f"api sched_hangup +{delay} {REJECT_UUID} {cause}",
                             "execute pre_answer", f"execute playback {DECLINED}",
                             f"api uuid_kill {REJECT_UUID} {cause}"]
    assert trace.queued == []  # no sendmsg hangup waits behind the playback
    assert trace.outcome == f"uuid_kill {cause}"
    assert trace.sip_code == code  # 608 through proto_specific_hangup_cause=sip:608
    assert events(logs) == ["esl.check.announcement_timeout", "esl.check.rejected"]
    rejected = one(logs, "esl.check.rejected")
    assert (rejected["sip_code"], rejected["forced"], rejected["kill_cause"]) == (code, "playback_deadline", cause)


@pytest.mark.parametrize(("tenant", "cause", "code"), CASES)
async def test_switch_side_guard_ends_the_call_when_the_gate_is_gone(lab: Lab, tenant: str, cause: str,
                                                                      code: int) -> None:
    """The gate's session ends (deadline, crash) while the playback blocks: sched_hangup ends it."""
    settings = EslSettings(strip_prefix="8", sounds_dir=SOUNDS)  # default deadlines
    trace, logs = await lab.call(listed(tenant), settings, peer=FakeFreeSwitch(listed(tenant), media_timer=False),
                                 session_deadline=0.2)
    assert one(logs, "esl.session.closed")["outcome"] == "timeout"
    assert trace.scheduled == (reject_guard_delay(settings), cause)
    assert trace.outcome == f"sched_hangup {cause}"
    assert trace.sip_code == code


def test_the_guard_fires_after_the_gate_has_given_up() -> None:
    defaults = EslSettings()
    assert reject_guard_delay(defaults) > defaults.playback_deadline + 2 * defaults.settle_deadline
    assert reject_guard_delay(EslSettings(announce=False)) > 2 * defaults.settle_deadline


async def test_hangup_not_seen_within_the_settle_deadline_is_forced(lab: Lab) -> None:
    """Any hangup that does not take effect (here: the channel is stuck after multiset) is forced."""
    settings = EslSettings(strip_prefix="8", announce=False, settle_deadline=1.0)  # the first settle fires
    trace, logs = await lab.call(listed("unwanted"), settings, peer=FakeFreeSwitch(listed("unwanted"),
                                                                                   blocks_on="multiset"))
    assert shorts(trace) == ["myevents", "execute multiset", "hangup UNWANTED", f"api uuid_kill {REJECT_UUID} UNWANTED"]
    assert [c.short() for c in trace.queued] == ["hangup UNWANTED"]
    assert (trace.outcome, trace.sip_code) == ("uuid_kill UNWANTED", 607)
    assert one(logs, "esl.check.rejected")["forced"] == "hangup_not_seen"


async def test_a_normal_reject_sends_no_api_hangup(lab: Lab) -> None:
    trace, logs = await lab.call(listed("rejected"), QUICK)
    assert shorts(trace)[-1] == "execute respond 608 Rejected"
    assert not any(s.startswith("api uuid_kill") for s in trace.shorts())
    assert (trace.outcome, trace.sip_code) == ("respond 608 Rejected", 608)
    assert multiset(trace)["proto_specific_hangup_cause"] == "sip:608"
    assert "forced" not in one(logs, "esl.check.rejected")


@pytest.mark.parametrize("tenant", ["default", "unwanted"])
async def test_causes_other_than_608_carry_no_sip_override(lab: Lab, tenant: str) -> None:
    trace, _ = await lab.call(listed(tenant), QUICK)
    assert "proto_specific_hangup_cause" not in multiset(trace)
    assert trace.shorts()[2] == guard(trace.shorts()[-1], QUICK)


async def test_guard_refused_is_logged_and_the_reject_goes_on(lab: Lab) -> None:
    """A channel the API cannot find (-ERR) still gets the queued reject."""
    trace, logs = await lab.call(listed(), QUICK, peer=_OtherChannel(listed()))
    assert one(logs, "esl.check.guard_refused")["answer"] == "-ERR No such channel!"
    assert (trace.outcome, trace.sip_code) == ("hangup CALL_REJECTED", 603)


async def test_closed_after_connect_without_a_transfer_continues_the_dialplan(lab: Lab) -> None:
    async def explode(*_: Any) -> None:
        raise RuntimeError("bug")

    lab.gate.check = explode  # type: ignore[method-assign]
    trace, _ = await lab.call(listed())
    assert trace.outcome == DIALPLAN  # the dialplan's reject after socket runs (recorded, outbound_1_5559999)


class _OtherChannel(FakeFreeSwitch):
    @property
    def unique_id(self) -> str:
        return "00000000-0000-0000-0000-000000000000"
