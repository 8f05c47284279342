"""The subscriber self-service IVR through the real Asterisk, with DTMF sent by SIPp.

A subscriber calls the service number (``4000``, ``dialplan/asterisk/extensions_dncgate_ivr.conf``)
from SIPp; the caller ID is the P-Asserted-Identity of the INVITE (the lab endpoint has
``trust_id_inbound = yes``, as a trunk with a network-verified caller ID would). SIPp answers the
menu with RFC 4733 telephone-events (``<exec play_dtmf="1"/>``, SIPp 3.6.1 with RTP streaming;
Asterisk's endpoint ``dtmf_mode`` is the default ``rfc4733``). The gate (``dncgate serve``) runs
the menu over FastAGI ``/ivr`` and records the choice in the consent ledger on Redis; the next
marketing call to the subscriber's number, through the ordinary outbound route, is rejected with
``category_declined``. The same module's gate and Asterisk as tests/e2e/test_consent_calls.py.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import RedisServer
from tests.e2e.gate_process import AsteriskLogCursor
from tests.e2e.lab import (
    LOOPBACK,
    RtpSink,
    SipMessage,
    _sipp_cmd,
    _terminate,
    free_udp_port,
    parse_sipp_messages,
)
from tests.e2e.test_consent_calls import IVR_NUMBER, ConsentEnv, consent_env
from tests.e2e.test_gate_calls import assert_completed, assert_rejected_with_announcement
from tests.ports import media_block

pytestmark = pytest.mark.e2e

SUBSCRIBER = "+12015550188"  # calls the IVR, then gets a marketing call
WITHHELD = "+12015550189"

# A caller that answers the IVR with DTMF: INVITE (PAI = the subscriber; SDP audio port = a Python socket
# counting the prompts' RTP, as the lab's calls do), ACK the 200, then the
# @DTMF@ block (pauses and play_dtmf), hang up. The SDP offers telephone-event/8000 on PT 96: SIPp 3.6.1's
# play_dtmf sends its RFC 4733 events with payload type 96, whatever was negotiated (src/prepare_pcap.c).
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="dncgate ivr caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "dialer" <sip:dialer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:dialer@[local_ip]:[local_port]>
      Max-Forwards: 70
      Subject: dncgate e2e ivr
      X-Dncgate-Tenant: @TENANT@
@PAI@
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=dialer 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio @RTP_PORT@ RTP/AVP 0 96
      a=rtpmap:0 PCMU/8000
      a=rtpmap:96 telephone-event/8000
      a=fmtp:96 0-16
      a=sendrecv
    ]]>
  </send>

  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>

  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "dialer" <sip:dialer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Contact: <sip:dialer@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>

@DTMF@

  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "dialer" <sip:dialer@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      [routes]
      Contact: <sip:dialer@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>

  <recv response="200" crlf="true"/>
</scenario>
"""


@dataclass
class IvrCallResult:
    codes: list[int]
    uac_exit: int
    messages: list[SipMessage]
    log_dir: Path
    audio_seconds: float  # prompt audio (PCMU) Asterisk sent to the caller
    audio_rms: float


def ivr_call(env: ConsentEnv, name: str, caller: str | None, dtmf: list[tuple[int, str]], hold_ms: int,
             tenant: str = "ivr") -> IvrCallResult:
    """Call the IVR as ``caller`` (its PAI; None: no PAI), then for each (pause ms, digits): wait, press."""
    workdir = env.lab.artifacts / f"ivr-{name}"
    workdir.mkdir(parents=True, exist_ok=True)
    steps = "".join(f'  <pause milliseconds="{pause}"/>\n  <nop><action><exec play_dtmf="{digits}"/></action></nop>\n'
                    for pause, digits in dtmf)
    steps += f'  <pause milliseconds="{hold_ms}"/>\n'
    pai = f"      P-Asserted-Identity: <sip:{caller}@{LOOPBACK}>\n" if caller else ""  # (no empty header line)
    scenario = workdir / "ivr-uac.xml"
    timeout = sum(p for p, _ in dtmf) // 1000 + hold_ms // 1000 + 20
    with RtpSink() as sink:
        scenario.write_text(SCENARIO.replace("@TENANT@", tenant).replace("@PAI@\n", pai).replace("@DTMF@", steps)
                            .replace("@RTP_PORT@", str(sink.port)))
        with (workdir / "uac.stdout").open("wb") as out:
            proc = subprocess.Popen(
                _sipp_cmd(scenario, workdir, "uac", f"{LOOPBACK}:{env.lab.sip_port}", "-s", IVR_NUMBER,
                          "-p", str(free_udp_port()), "-mp", str(media_block()),
                          "-timeout", f"{timeout}s", "-timeout_error"),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
            try:
                exit_code = proc.wait(timeout=timeout + 10)
            finally:
                _terminate(proc)
        time.sleep(0.05)
    messages = parse_sipp_messages((workdir / "uac-messages.log").read_text(errors="replace"))
    codes = [m.status for m in messages if m.direction == "received" and m.status and m.cseq_method == "INVITE"]
    result = IvrCallResult([c for c in codes if c], exit_code, messages, workdir, len(sink.pcmu) / 8000,
                           sink.audio_rms())
    print(f"[ivr {name}] caller {caller}: INVITE codes {result.codes}, sipp exit {exit_code}, dtmf {dtmf}, "
          f"prompt audio {result.audio_seconds:.2f} s (rms {result.audio_rms:.0f})")
    return result


@pytest.fixture(scope="module")
def env(asterisk_chroot: Path, redis_server: RedisServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsentEnv]:
    with consent_env(asterisk_chroot, redis_server, tmp_path_factory.mktemp("ivr-calls")) as value:
        yield value


def dtmf_seen(env: ConsentEnv, since: int) -> list[str]:
    """The DTMF digits Asterisk received (its 'DTMF end' log lines) since ``since``."""
    return [line.split("'")[1] for line in env.lab.log_text(since).splitlines()
            if "DTMF end '" in line and "PJSIP/dialer" in line]


def test_ivr_decline_all_then_a_marketing_call_is_rejected(env: ConsentEnv) -> None:
    log = AsteriskLogCursor(env.lab)
    # before: a marketing call to the subscriber completes
    call = env.call(SUBSCRIBER, tenant="ivr")
    assert_completed(call)
    assert log.decision().reason == "allowed_clear"

    since = env.lab.log_size()
    result = ivr_call(env, "decline-all", SUBSCRIBER, [(3000, "1")], hold_ms=3000)
    assert result.codes[-1] == 200, result
    assert result.uac_exit == 0, result
    assert dtmf_seen(env, since) == ["1"]
    assert result.audio_seconds > 3.0, result  # the welcome (interrupted by 1) and the confirmation
    assert result.audio_rms > 500, result

    status, body = env.api("GET", f"/v1/subscribers/{SUBSCRIBER}")
    assert status == 200, body
    assert body["declines_all_marketing"] is True, body
    status, body = env.api("GET", f"/v1/consents?number={SUBSCRIBER}&history=true")
    assert status == 200, body
    (record,) = [r for r in body["history"] if r["action"] == "decline"]
    assert record["evidence"]["channel"] == "ivr"
    assert record["evidence"]["source"] == SUBSCRIBER
    assert record["evidence"]["captured_by"] == "ivr"
    assert record["evidence"]["shown"] == "dncgate/en/ivr-menu keys=1"
    print(f"[ivr decline-all] ledger record seq {record['seq']} {record['action']} evidence {record['evidence']}")

    # the next marketing call to that number, through the ordinary outbound route
    call = env.call(SUBSCRIBER, tenant="ivr")
    assert_rejected_with_announcement(call, 607)
    logged = log.decision()
    assert (logged.verdict, logged.reason) == ("reject", "category_declined")
    audit = env.gate.audit_record(logged.decision_id)
    assert (audit["callee"], audit["reason"], audit["sip_code"]) == (SUBSCRIBER, "category_declined", 607)

    # 9 re-allows: the next call completes again
    since = env.lab.log_size()
    result = ivr_call(env, "reallow", SUBSCRIBER, [(3000, "9")], hold_ms=3000)
    assert dtmf_seen(env, since) == ["9"]
    call = env.call(SUBSCRIBER, tenant="ivr")
    assert_completed(call)
    assert log.decision().reason == "allowed_clear"


def test_ivr_without_caller_id_hangs_up(env: ConsentEnv) -> None:
    """No P-Asserted-Identity: the caller ID is "dialer" (the From user), not a number -> hang-up."""
    since = env.lab.log_size()
    result = ivr_call(env, "unidentified", None, [], hold_ms=8000)
    assert result.codes[-1] == 200, result
    bye_from_asterisk = [m for m in result.messages if m.direction == "received" and m.method == "BYE"]
    assert bye_from_asterisk, "Asterisk should hang up after 'cannot identify you'"
    played = re.findall(r"Playing '(dncgate/[^']+)\.slin'", env.lab.log_text(since))
    assert played == ["dncgate/en/ivr-unidentified"], played
    assert 4.0 < result.audio_seconds < 9.0, result  # the whole prompt (6.5 s), then the gate hung up


def test_ivr_categories_with_hash(env: ConsentEnv) -> None:
    """2, then 3 (education) and 8 (food) and # -> those categories are declined, others are not."""
    caller = "+12015550187"
    log = AsteriskLogCursor(env.lab)
    since = env.lab.log_size()
    ivr_call(env, "categories", caller, [(3000, "2"), (2000, "38#")], hold_ms=2500)
    assert dtmf_seen(env, since) == ["2", "3", "8", "#"]
    status, body = env.api("GET", f"/v1/subscribers/{caller}")
    assert (status, body["declined_categories"], body["declines_all_marketing"]) == (200, ["education", "food"], False)
    call = env.call(caller, tenant="ivr", category="education")
    assert_rejected_with_announcement(call, 607)
    assert log.decision().reason == "category_declined"
    call = env.call(caller, tenant="ivr", category="travel")
    assert_completed(call)
    assert log.decision().reason == "allowed_clear"


def test_ivr_withdraws_a_consent(env: ConsentEnv) -> None:
    """A consent granted through the API to bank-1, withdrawn with 3 then 1 -> consent_revoked."""
    caller = "+12015550186"
    log = AsteriskLogCursor(env.lab)
    status, body = env.api("POST", "/v1/consents", {
        "number": caller, "entity": "bank-1", "categories": ["finance"],
        "evidence": {"channel": "paper", "captured_at": "2026-01-05T10:00:00+00:00", "source": "form 17",
                     "shown": "template:optin-v3", "captured_by": "e2e"}})
    assert status == 201, body
    call = env.call(caller, tenant="ivr", entity="bank-1", category="finance")
    assert_completed(call)
    assert log.decision().reason == "allowed_consent"
    since = env.lab.log_size()
    ivr_call(env, "withdraw", caller, [(3000, "3"), (2500, "1")], hold_ms=2500)
    assert dtmf_seen(env, since) == ["3", "1"]
    call = env.call(caller, tenant="ivr", entity="bank-1", category="finance")
    assert_rejected_with_announcement(call, 607)
    assert log.decision().reason == "consent_revoked"
