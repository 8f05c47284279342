"""Hostile requests to a running serve (issue 11 items 13, 14, 16, 17, 18): each gets its
documented reply, leaves no traceback in the log, and every door answers after it."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.hostile.conftest import Hostile
from tests.hostile.peers import (
    LISTED,
    OVERSIZE_REQUESTS,
    agi_check,
    agi_digit_overflow,
    connect_close,
    esl_call,
    http_get,
    raw_http,
    tenant_labels,
    unknown_tenants,
)

CONFIGURED = {"acme", "strict", "pilot"}


def assert_no_traceback(hostile: Hostile) -> None:
    text = hostile.log_text()
    assert "Traceback" not in text
    assert "Future exception was never retrieved" not in text


async def assert_doors_answer(hostile: Hostile) -> None:
    answers = await hostile.answers()
    assert answers.all, answers.detail


@pytest.mark.parametrize("kind", list(OVERSIZE_REQUESTS))
async def test_an_oversize_request_is_answered_in_the_json_error_shape(shared_hostile: Hostile, kind: str) -> None:
    before = len(shared_hostile.events("http.bad_request"))
    status, body = await asyncio.to_thread(raw_http, shared_hostile.gate.http_port, OVERSIZE_REQUESTS[kind])
    assert status == 400
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request"
    assert error["message"]
    assert len(shared_hostile.events("http.bad_request")) == before + 1  # one warning line
    assert_no_traceback(shared_hostile)
    await assert_doors_answer(shared_hostile)


async def test_an_agi_reply_with_thousands_of_digits_ends_the_session_without_a_traceback(
        shared_hostile: Hostile) -> None:
    assert await agi_digit_overflow(shared_hostile.gate.agi_port) == b""  # closed: no verdict set
    errors = shared_hostile.events("agi.session.protocol_error")
    assert [e["phase"] for e in errors if "result= longer than 1024" in str(e["error"])] == ["session"]
    assert shared_hostile.events("agi.session.handler_error") == []
    assert_no_traceback(shared_hostile)
    await assert_doors_answer(shared_hostile)


async def test_a_language_that_is_no_tag_plays_the_tenants_own(shared_hostile: Hostile) -> None:
    variables = await agi_check(shared_hostile.gate.agi_port, LISTED,
                                "tenant=acme&purpose=marketing&language=../../../../tmp/x")
    assert variables["DNCGATE_ANNOUNCEMENT"] == "dncgate/en/declined"
    trace = await esl_call(shared_hostile.esl_port, LISTED, dncgate_language="${system id}")
    playbacks = [c for c in trace.shorts() if c.startswith("execute playback")]
    assert playbacks == ["execute playback /usr/share/freeswitch/sounds/dncgate/en/declined.wav"]
    refused = shared_hostile.events("gate.language_refused")
    assert {(e["door"], e["used"]) for e in refused} == {("agi", "en"), ("esl", "en")}
    await assert_doors_answer(shared_hostile)


async def test_unknown_tenants_are_refused_and_add_one_label(shared_hostile: Hostile) -> None:
    replies = await unknown_tenants(shared_hostile.gate.agi_port, 50)
    assert {(r["DNCGATE_VERDICT"], r["DNCGATE_REASON"]) for r in replies} == {("reject", "unknown_tenant")}
    status, metrics = await http_get(shared_hostile.gate.http_port, "/metrics")
    assert status == 200
    labels = tenant_labels(metrics)
    assert "unknown" in labels
    assert labels <= CONFIGURED | {"unknown"}, labels
    await assert_doors_answer(shared_hostile)


async def test_connect_and_close_probes_are_no_warnings(shared_hostile: Hostile) -> None:
    def warnings() -> int:
        return sum(1 for e in shared_hostile.gate.log_events() if e.get("level") in ("warning", "error"))

    before = warnings()
    for port in (shared_hostile.gate.agi_port, shared_hostile.esl_port, shared_hostile.gate.http_port):
        await connect_close(port, 30)
    await assert_doors_answer(shared_hostile)
    assert warnings() == before
    assert_no_traceback(shared_hostile)
