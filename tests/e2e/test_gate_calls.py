"""Real calls SIPp -> Asterisk 22 -> the real gate (``dncgate serve``, Redis store) over FastAGI.

Issue 3 item 7. Every test places real calls; nothing is faked on the gate's side. The gate runs
as its own process (tests/e2e/gate_process.py) with the tenants acme (607, technical prefix 9),
strict (603) and pilot (monitor); the national list holds LISTED, acme's own list TENANT_LISTED.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import RedisServer, free_port
from tests.e2e.gate_process import (
    CLEAR,
    LISTED,
    STANDARD_LISTS,
    TENANT_LISTED,
    AsteriskLogCursor,
    GateProcess,
    invite_timings,
    load_lists,
    uac_message_log,
)
from tests.e2e.lab import AsteriskLab, CallResult, free_tcp_port

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.e2e.conftest_gate"]  # fixtures dncgate_serve, gate, asterisk_log

ANNOUNCEMENT_SECONDS = 3.75  # prompts/asterisk/en/declined.wav


def evidence(label: str, call: CallResult) -> None:
    """One line per call for the -s / -rA output: codes, early media, duration."""
    timing = invite_timings(uac_message_log(call.log_dir))
    first = f"{timing.first_response * 1000:.0f} ms" if timing.first_response is not None else "-"
    print(f"[{label}] {call.number}: codes {call.status_codes} rtp {call.rtp_packets} packets "
          f"({call.rtp_audio_seconds:.2f} s audio) callee_completed={call.callee_completed} "
          f"invite->first response {first} call {call.duration:.2f} s")


def assert_completed(call: CallResult) -> None:
    evidence("completed", call)
    assert call.final_code == 200, call
    assert call.reached_callee, call
    assert call.callee_completed, call  # the callee SIPp got INVITE, ACK and BYE (and sent 200 to it)
    assert call.uac_exit == 0, call


def assert_rejected_with_announcement(call: CallResult, code: int) -> None:
    evidence(f"rejected {code}", call)
    assert call.final_code == code, call
    assert 200 not in call.status_codes, call
    assert call.got_183, call
    assert call.status_codes.index(183) < call.status_codes.index(code), call
    assert call.rtp_payload_types == {0}, call
    assert call.rtp_packets >= 100, call  # real early media: most of the 3.75 s prompt at 50 packets/s
    assert call.rtp_audio_seconds >= ANNOUNCEMENT_SECONDS - 1.0, call
    assert call.rtp_audio_rms > 500, call
    assert not call.reached_callee, call
    assert call.uac_exit == 0, call


# ----------------------------------------------------------------------------- (a) (b)


def test_allowed_callee_completes(lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor) -> None:
    call = lab.place_call(CLEAR, tenant="acme", purpose="marketing")
    assert_completed(call)
    logged = asterisk_log.decision()
    assert (logged.verdict, logged.reason) == ("allow", "allowed_clear")
    record = gate.audit_record(logged.decision_id)
    assert (record["callee"], record["door"], record["tenant"]) == (CLEAR, "agi", "acme")


@pytest.mark.parametrize(
    ("tenant", "number", "code", "reason"),
    [
        ("acme", LISTED, 607, "national_dnc"),
        ("strict", LISTED, 603, "national_dnc"),
        ("acme", TENANT_LISTED, 607, "tenant_dnc"),
    ],
)
def test_listed_callee_hears_announcement_then_reject_code(
    lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor, tenant: str, number: str, code: int,
    reason: str,
) -> None:
    call = lab.place_call(number, tenant=tenant, purpose="marketing")
    assert_rejected_with_announcement(call, code)
    logged = asterisk_log.decision()
    assert (logged.verdict, logged.reason) == ("reject", reason)
    record = gate.audit_record(logged.decision_id)
    assert (record["verdict"], record["reason"], record["sip_code"]) == ("reject", reason, code)


def test_tenant_list_is_per_tenant(lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor) -> None:
    call = lab.place_call(TENANT_LISTED, tenant="strict", purpose="marketing")  # only acme listed it
    assert_completed(call)
    assert asterisk_log.decision().reason == "allowed_clear"


def test_service_call_to_listed_callee_completes(
    lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor
) -> None:
    call = lab.place_call(LISTED, tenant="acme", purpose="service")
    assert_completed(call)
    assert asterisk_log.decision().reason == "allowed_service"


def assert_rejected_without_announcement(call: CallResult, code: int) -> None:
    """A failed check: the final code straight away, no 183 and no early media (nothing was declined)."""
    evidence(f"rejected {code}, no announcement", call)
    assert call.final_code == code, call
    assert 200 not in call.status_codes, call
    assert not call.got_183, call
    assert call.rtp_packets == 0, call
    assert not call.reached_callee, call
    assert call.uac_exit == 0, call


@pytest.mark.parametrize("tenant", ["acme-typo", None], ids=["unconfigured", "none (no tenant default)"])
def test_an_unconfigured_tenant_is_refused_as_a_configuration_fault(
    lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor, tenant: str | None,
) -> None:
    """A clear callee, but a tenant no table names (the e2e config has no tenant ``default``, so a
    call naming none is one too): 603 without the announcement, logged unknown_tenant."""
    call = lab.place_call(CLEAR, tenant=tenant, purpose="marketing")
    assert_rejected_without_announcement(call, 603)
    logged = asterisk_log.decision()
    assert (logged.verdict, logged.reason) == ("reject", "unknown_tenant")
    record = gate.audit_record(logged.decision_id)
    assert (record["reason"], record["tenant"], record["sip_code"]) == ("unknown_tenant", tenant or "default", 603)


def test_a_flushed_redis_refuses_the_next_listed_call_and_healthz_says_why(
    lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor, redis_server: RedisServer,
) -> None:
    """Issue 11 item 2: the lists gone from under a running gate (FLUSHALL on its real redis-server;
    a restart without persistence or a failover replica does the same) is no allowed_clear."""
    assert_rejected_with_announcement(lab.place_call(LISTED, tenant="acme", purpose="marketing"), 607)
    assert asterisk_log.decision().reason == "national_dnc"
    redis_server.flush()
    for number in (LISTED, "00" + LISTED[1:]):  # the listed callee in two forms
        assert_rejected_without_announcement(lab.place_call(number, tenant="acme", purpose="marketing"), 603)
        logged = asterisk_log.decision()
        assert (logged.verdict, logged.reason) == ("reject", "list_missing")
    status, body = gate.healthz()
    assert (status, body.get("lists"), body.get("error")) == (
        503, "missing", "no live version of national (needed by acme, pilot, strict)"), body
    assert_completed(lab.place_call(LISTED, tenant="acme", purpose="service"))  # service calls need no list
    load_lists(redis_server.url, STANDARD_LISTS)
    assert gate.healthz()[0] == 200
    assert_rejected_with_announcement(lab.place_call(LISTED, tenant="acme", purpose="marketing"), 607)


def test_a_missing_purpose_is_marketing_whatever_the_channel_says(
    lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor
) -> None:
    # No X-Dncgate-Purpose, so ARG2 is empty, and a DNCGATE_PURPOSE=service planted on the channel:
    # the subroutine sends purpose=marketing and the call is refused.
    call = lab.place_call(LISTED, tenant="acme", purpose=None, variables={"DNCGATE_PURPOSE": "service"})
    assert_rejected_with_announcement(call, 607)
    logged = asterisk_log.decision()
    assert (logged.verdict, logged.reason) == ("reject", "national_dnc")


# ----------------------------------------------------------------------------- (c)

# What the lab dialplan hands the gate is the Request-URI user part (${EXTEN}) unchanged.
LISTED_FORMS = {
    "national": "2015550123",
    "national with trunk 1": "12015550123",
    "+E.164": "+12015550123",
    "00 international": "0012015550123",
    "011 international": "01112015550123",
    "outside line 9 + national": "92015550123",
    "outside line 9 + 1 + national": "912015550123",
}


def test_listed_callee_in_every_dialled_format_is_rejected(
    lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor
) -> None:
    # concurrently: each rejected call plays the 3.75 s announcement
    with ThreadPoolExecutor(max_workers=len(LISTED_FORMS)) as pool:
        calls = dict(zip(
            LISTED_FORMS,
            pool.map(lambda n: lab.place_call(n, tenant="acme", purpose="marketing"), LISTED_FORMS.values()),
            strict=True,
        ))
    for form, call in calls.items():
        evidence(form, call)
        assert call.final_code == 607, (form, call)
        assert call.got_183, (form, call)
        assert call.rtp_packets >= 100, (form, call)
        assert not call.reached_callee, (form, call)
    logged = asterisk_log.decisions(len(LISTED_FORMS))
    assert [d.reason for d in logged] == ["national_dnc"] * len(LISTED_FORMS), logged
    callees = {r["dialled"]: r["callee"] for r in gate.audit_tail(100) if r["decision_id"] in
               {d.decision_id for d in logged}}
    assert callees == dict.fromkeys(LISTED_FORMS.values(), LISTED), callees


# ----------------------------------------------------------------------------- (d)


def test_gate_down_marketing_rejected_service_per_dialplan_setting(lab: AsteriskLab) -> None:
    nobody = ("127.0.0.1", free_tcp_port())  # nothing listens there
    call = lab.place_call(CLEAR, purpose="marketing", gate=nobody)
    assert call.final_code == 603, call  # DNCGATE_FAIL_CODE
    assert not call.reached_callee, call
    assert not call.got_183, call

    call = lab.place_call(CLEAR, purpose="service", gate=nobody)
    assert call.final_code == 603, call  # DNCGATE_SERVICE_ON_FAILURE=reject (the lab's default)
    assert not call.reached_callee, call

    lab.set_global("DNCGATE_SERVICE_ON_FAILURE", "allow")
    call = lab.place_call(CLEAR, purpose="service", gate=nobody)
    assert_completed(call)
    call = lab.place_call(CLEAR, purpose="marketing", gate=nobody)
    assert call.final_code == 603, call  # never for marketing
    assert not call.reached_callee, call


# ----------------------------------------------------------------------------- (e)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own: it is stopped, stalled and restarted (the session one is shared)."""
    server = RedisServer("127.0.0.1", free_port(), tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


# Upper bound for INVITE -> first response (183 or final) while Redis is unusable: the gate's
# 250 ms store deadline plus Asterisk, AGI and SIP on a busy 2-core machine.
DECIDED_WITHIN = 1.5


def _decided_quickly(call: CallResult) -> float:
    timing = invite_timings(uac_message_log(call.log_dir))
    assert timing.first_response is not None, call
    assert timing.first_response < DECIDED_WITHIN, (timing, call)
    return timing.first_response


def test_redis_outage_fails_closed_fast_and_recovers_without_restart(
    lab: AsteriskLab, asterisk_log: AsteriskLogCursor, own_redis: RedisServer, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    load_lists(own_redis.url, STANDARD_LISTS)
    with GateProcess(tmp_path / "gate", own_redis.url, timeout_ms=250) as gate:  # the deadline under test
        lab.use_gate(gate.agi_port)
        assert gate.process is not None
        gate_pid = gate.process.pid
        timings: dict[str, list[float]] = {"stalled": [], "stopped": []}

        # 1. Redis stalled (SIGSTOP: connections stay open, nothing answers)
        assert own_redis.process is not None
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                marketing = list(pool.map(lambda n: lab.place_call(n, tenant="acme", purpose="marketing"),
                                          [CLEAR, LISTED, TENANT_LISTED]))
                service = lab.place_call(LISTED, tenant="acme", purpose="service")
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)
        for call in marketing:
            evidence("redis stalled, marketing", call)
            assert call.final_code == 603, call  # check_failed_sip_code
            assert 200 not in call.status_codes, call
            assert not call.reached_callee, call
            timings["stalled"].append(_decided_quickly(call))
        assert_completed(service)  # service_on_failure = allow (the tenant's setting)
        timings["stalled"].append(_decided_quickly(service))
        logged = asterisk_log.decisions(4)
        assert sorted(d.reason for d in logged) == ["check_failed"] * 4, logged

        # 2. Redis gone (connection refused)
        own_redis.stop()
        with ThreadPoolExecutor(max_workers=2) as pool:
            stopped = list(pool.map(lambda n: lab.place_call(n, tenant="acme", purpose="marketing"), [LISTED, CLEAR]))
        for call in stopped:
            evidence("redis stopped, marketing", call)
            assert call.final_code == 603, call
            assert not call.reached_callee, call
            timings["stopped"].append(_decided_quickly(call))
        assert [d.reason for d in asterisk_log.decisions(2)] == ["check_failed"] * 2
        assert gate.healthz()[0] == 503

        # 3. Redis back on the same port, empty: reload; the same gate process decides again
        own_redis.start()
        load_lists(own_redis.url, STANDARD_LISTS)
        deadline = time.monotonic() + 10
        while gate.healthz()[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gate.healthz()[0] == 200
        call = lab.place_call(LISTED, tenant="acme", purpose="marketing")
        assert_rejected_with_announcement(call, 607)
        assert asterisk_log.decision().reason == "national_dnc"
        call = lab.place_call(CLEAR, tenant="acme", purpose="marketing")
        assert_completed(call)
        assert gate.process is not None
        assert gate.process.pid == gate_pid
        assert gate.process.poll() is None
        request.node.user_properties.append(("invite_to_first_response_s", timings))
        print(f"INVITE -> first response during the outage (s): {timings}")


# ----------------------------------------------------------------------------- (f)


def test_monitor_mode_completes_and_audits_would_be_reject(
    lab: AsteriskLab, gate: GateProcess, asterisk_log: AsteriskLogCursor
) -> None:
    call = lab.place_call(LISTED, tenant="pilot", purpose="marketing")
    assert_completed(call)
    assert not call.got_183, call
    logged = asterisk_log.decision()
    assert (logged.verdict, logged.reason) == ("allow", "national_dnc")
    record = gate.audit_record(logged.decision_id)
    assert record["outcome"] == "reject", record
    assert record["verdict"] == "allow", record
    assert record["reason"] == "national_dnc", record
    assert record["mode"] == "monitor", record
    assert record["tenant"] == "pilot", record
