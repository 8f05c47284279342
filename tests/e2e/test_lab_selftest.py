"""Self-test of the Asterisk + SIPp lab with a throw-away FastAGI responder (tests/e2e/fake_gate.py).

Proves the lab and the operator dialplan (dialplan/asterisk/extensions_dncgate.conf) do what
the real gate's end-to-end tests will rely on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import ports
from tests.e2e.fake_gate import FakeGate
from tests.e2e.lab import AsteriskLab, CallResult, free_tcp_port, running_lab

pytestmark = pytest.mark.e2e

ANNOUNCEMENT_SECONDS = 3.75  # prompts/asterisk/en/declined.wav


@pytest.fixture
def fake_gate(lab: AsteriskLab) -> Iterator[FakeGate]:
    with FakeGate() as gate:
        lab.use_gate(gate.port)
        yield gate


def assert_rejected_with_announcement(call: CallResult, code: int) -> None:
    assert call.final_code == code, call
    assert 200 not in call.status_codes, call
    assert call.got_183, call
    # real RTP from Asterisk: PCMU, most of the prompt, and not silence
    assert call.rtp_payload_types == {0}, call
    assert call.rtp_packets >= 100, call
    assert call.rtp_audio_seconds >= ANNOUNCEMENT_SECONDS - 1.0, call
    assert call.rtp_audio_rms > 500, call
    assert not call.reached_callee, call


def test_allowed_call_completes_to_callee(lab: AsteriskLab, fake_gate: FakeGate) -> None:
    call = lab.place_call("15551230100", tenant="acme", purpose="marketing")
    assert call.final_code == 200, call
    assert call.reached_callee, call
    assert call.callee_completed, call
    assert call.uac_exit == 0, call
    [req] = fake_gate.requests
    assert req.script == "check"
    assert req.params == {"tenant": "acme", "purpose": "marketing", "category": "", "entity": ""}
    assert req.number == "15551230100"
    assert req.env["agi_network"] == "yes"


def test_an_empty_tenant_argument_asks_for_the_default_tenant_without_a_blank_tenant(
    lab: AsteriskLab, fake_gate: FakeGate,
) -> None:
    """The gate refuses a blank ``tenant=`` (unknown_tenant): an empty ARG1 sends no tenant at all."""
    call = lab.place_call("15551230100", tenant=None, purpose="marketing")
    assert call.final_code == 200, call
    [req] = fake_gate.requests
    assert req.params == {"purpose": "marketing", "category": "", "entity": ""}


@pytest.mark.parametrize("code", [607, 603, 608])
def test_rejected_call_plays_announcement_then_final_code(lab: AsteriskLab, fake_gate: FakeGate, code: int) -> None:
    call = lab.place_call(f"15551230{code}", tenant="acme", purpose="marketing")
    assert_rejected_with_announcement(call, code)
    assert call.uac_exit == 0, call  # the caller ACKed the final response
    # Asterisk 22.10 with res_pjsip_rfc3326 loaded (see dialplan/asterisk/README.md): the final
    # response to PJSIPHangup carries "Reason: Q.850;cause=0"; without the module, none.
    assert call.final_header("Reason") in ([], ["Q.850;cause=0"]), call.final_headers


def test_missing_announcement_still_rejects(lab: AsteriskLab) -> None:
    def rule(number: str) -> dict[str, str]:
        return {
            "DNCGATE_VERDICT": "reject",
            "DNCGATE_SIPCODE": "608",
            "DNCGATE_ANNOUNCEMENT": "dncgate/xx/no-such-prompt",
        }

    with FakeGate(rule) as gate:
        call = lab.place_call("15551230100", gate=(gate.host, gate.port))
    assert call.final_code == 608, call
    assert call.got_183, call
    assert 200 not in call.status_codes, call
    assert not call.reached_callee, call


def test_unknown_reject_code_falls_back_to_reject_code(lab: AsteriskLab) -> None:
    def rule(number: str) -> dict[str, str]:
        return {"DNCGATE_VERDICT": "reject", "DNCGATE_SIPCODE": "200"}

    with FakeGate(rule) as gate:
        call = lab.place_call("15551230100", gate=(gate.host, gate.port))
    assert call.final_code == 603, call
    assert not call.got_183, call  # no announcement set: no early media
    assert not call.reached_callee, call


def test_gate_down_rejects_marketing_call(lab: AsteriskLab) -> None:
    # the session starts pointing at a port nobody listens on
    call = lab.place_call("15551230100", purpose="marketing")
    assert call.final_code == 603, call
    assert 200 not in call.status_codes, call
    assert not call.reached_callee, call
    assert not call.got_183, call
    assert call.rtp_packets == 0, call


def test_gate_down_service_call_follows_service_on_failure(lab: AsteriskLab) -> None:
    call = lab.place_call("15551230100", purpose="service")
    assert call.final_code == 603, call  # default: reject
    assert not call.reached_callee, call

    lab.set_global("DNCGATE_SERVICE_ON_FAILURE", "allow")
    call = lab.place_call("15551230100", purpose="service")
    assert call.final_code == 200, call
    assert call.callee_completed, call
    # ...but never a marketing call
    call = lab.place_call("15551230100", purpose="marketing")
    assert call.final_code == 603, call
    assert not call.reached_callee, call


def test_fail_code_is_configurable(lab: AsteriskLab) -> None:
    lab.set_global("DNCGATE_FAIL_CODE", "503")
    call = lab.place_call("15551230100", purpose="marketing")
    assert call.final_code == 503, call
    assert not call.reached_callee, call


def test_gate_answering_without_verdict_is_a_failure(lab: AsteriskLab, fake_gate: FakeGate) -> None:
    call = lab.place_call("15551230999", purpose="marketing")  # fake gate sets nothing
    assert call.final_code == 603, call
    assert not call.reached_callee, call
    assert len(fake_gate.requests) == 1


def test_injected_verdict_cannot_allow(lab: AsteriskLab) -> None:
    # a verdict set on the channel before the check (here via the lab's header import) is cleared
    call = lab.place_call("15551230100", variables={"DNCGATE_VERDICT": "allow"})
    assert call.final_code == 603, call
    assert not call.reached_callee, call


def test_per_call_gate_override(lab: AsteriskLab) -> None:
    with FakeGate() as gate:
        call = lab.place_call("15551230100", gate=(gate.host, gate.port))  # global still points nowhere
        assert call.final_code == 200, call
        assert len(gate.requests) == 1


def test_suppress_q850_reason_headers(asterisk_chroot: Path, tmp_path: Path) -> None:
    with running_lab(
        asterisk_chroot,
        gate_port=free_tcp_port(),
        artifacts=tmp_path,
        endpoint_options={"suppress_q850_reason_headers": "yes"},
    ) as lab2:
        call = lab2.place_call("15551230100")
        assert call.final_code == 603
        assert call.final_header("Reason") == [], call.final_headers


def test_sipp_bind_failure_is_retried_on_fresh_ports(
    lab: AsteriskLab, fake_gate: FakeGate, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the first media block handed to SIPp is already bound by someone else (as when a port
    # picked for one call is taken by a neighbour): SIPp exits 254 without sending a thing
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = int(squatter.getsockname()[1])
        real_block = ports.media_block
        handed = iter([taken])
        monkeypatch.setattr(ports, "media_block", lambda: next(handed, None) or real_block())
        call = lab.place_call("15551230100", tenant="acme", purpose="marketing")
    assert call.final_code == 200, call
    assert call.callee_completed, call
    assert len(fake_gate.requests) == 1  # the failed attempt never reached Asterisk
    assert "could not bind a port calling 15551230100 (attempt 1)" in capsys.readouterr().out


def test_missing_uriencode_fails_the_check_without_asking_the_gate(lab: AsteriskLab, fake_gate: FakeGate) -> None:
    # Issue 11 item 7: without func_uri the query reached the gate as tenant=&purpose= and every
    # call was decided for the default tenant. The subroutine now refuses to ask and says why.
    offset = lab.log_size()
    def module(load_type: str) -> None:  # the CLI's "module unload" is blacklisted on AMI
        reply = lab.ami.action("ModuleLoad", Module="func_uri.so", LoadType=load_type)
        assert reply["response"] == ["Success"], reply

    module("unload")
    try:
        lab.set_global("DNCGATE_SERVICE_ON_FAILURE", "allow")
        marketing = lab.place_call("15551230100", tenant="acme", purpose="marketing")
        service = lab.place_call("15551230101", tenant="acme", purpose="service")
    finally:
        module("load")
    assert marketing.final_code == 603, marketing
    assert not marketing.reached_callee, marketing
    assert not marketing.got_183, marketing  # a failed check plays no "declined" announcement
    # a service call goes on only where the operator chose that for a failed check
    assert service.final_code == 200, service
    assert fake_gate.requests == []  # the gate was never asked with a broken query
    log = lab.log_text(offset)
    assert "URIENCODE does not work, load func_uri.so: the gate cannot be asked, failing the check" in log
    warnings = [line for line in log.splitlines() if "] WARNING[" in line and "dncgate: check failed" in line]
    assert len(warnings) == 2, warnings
    # and with func_uri back, the gate is asked again
    call = lab.place_call("15551230100", tenant="acme", purpose="marketing")
    assert call.final_code == 200, call
    assert len(fake_gate.requests) == 1
