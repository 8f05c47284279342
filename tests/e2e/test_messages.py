"""Commercial messages through the real Asterisk: SIPp MESSAGE -> Asterisk 22 (res_pjsip_messaging)
-> the shipped ``dncgate-message`` subroutine -> ``POST /v1/messages/check`` on ``dncgate serve``.

Asterisk answers every MESSAGE 202 before its dialplan runs; what the gate decides shows in where
the message goes next:

* to a nationally listed recipient it is not forwarded: the recipient's SIPp gets nothing, the
  sender's endpoint gets the gate's notice (a MESSAGE from Asterisk), the audit says
  ``national_dnc`` with door ``sip-message``;
* to a recipient who consented (through the API, to the port's entity) it is forwarded: the
  recipient's SIPp gets exactly this message, the audit says ``allowed_consent``;
* a reply ``STOP`` from that recipient to the port is forwarded to the business and withdraws the
  consent: the next message to the recipient is refused (``consent_revoked``).

The recipient's SIPp takes one MESSAGE (-m 1) and the consented message is sent only after the
notice of the refused one came back, so "the listed recipient got nothing" is not a timeout: had
the refused message been forwarded, it would be the one the recipient's SIPp took.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import ports
from tests.conftest import RedisServer
from tests.e2e.gate_process import LISTED, TENANT_LISTED, GateProcess, load_lists
from tests.e2e.lab import (
    LOOPBACK,
    REPO_ROOT,
    SIPP_DIR,
    AsteriskLab,
    LabError,
    SipMessage,
    _sipp_cmd,
    _terminate,
    _wait_bound,
    free_udp_port,
    parse_sipp_messages,
)

pytestmark = pytest.mark.e2e

API_KEY = "dncg_e2e-messages-key-0123456789abcdef"
PORT = "733733"  # the marketing sender port (a US short code), registered to bank-1
SUBSCRIBER = "+12015550188"  # consents to bank-1, then replies STOP from its own endpoint
NOTICE = "Not delivered: the recipient does not accept marketing messages."
MESSAGES_DIALPLAN = REPO_ROOT / "dialplan" / "asterisk" / "extensions_dncgate_messages.conf"
MESSAGE_MODULES = ("res_pjsip_messaging", "res_curl", "func_curl", "res_pjsip_endpoint_identifier_ip")
# two SMS gateways Asterisk identifies by their address (res_pjsip_endpoint_identifier_ip), each with
# its own message_context naming it to the subroutine (ARG5)
GATEWAYS = {"bank-gw": "127.0.0.3", "other-gw": "127.0.0.4"}
POLLS = 400  # bounded waits for the Asterisk log, 50 ms apart
LISTS = {"national": [int(LISTED[1:])], "tenant:sms": [int(TENANT_LISTED[1:])]}

GATE_TENANTS = f"""\
[tenants.sms]
region = "US"
reject_sip_code = 607

[tenants.sms.hours]
enabled = false  # calling hours apply to messages too: the test must not depend on the hour

[api]
enabled = true

[api.keys.e2e-sms]
tenant = "sms"
sha256 = "{hashlib.sha256(API_KEY.encode()).hexdigest()}"

[messages]
enabled = true

[messages.tenants.sms]
notice = "{NOTICE}"

[messages.tenants.sms.ports."{PORT}"]
registered_for = "marketing"
entity = "bank-1"
"""

LAB_DIALPLAN = f"""
#include extensions_dncgate_messages.conf

; the message_context of every lab endpoint: the shipped subroutine, then the recipient's SIPp
[lab-messages]
exten => _X.,1,Gosub(lab-message,s,1(${{EXTEN}}))
exten => _+X.,1,Gosub(lab-message,s,1(${{EXTEN}}))

[lab-message]
exten => s,1,NoOp(lab message ${{MESSAGE(from)}} -> ${{ARG1}} gateway=${{ARG2}})
 same => n,Set(LOCAL(notice)=pjsip:callee/sip:{PORT}@{LOOPBACK}:${{LAB_MSG_NOTICE_PORT}})
 same => n,Set(LOCAL(to)=pjsip:callee/sip:${{ARG1}}@{LOOPBACK}:${{LAB_MSG_UAS_PORT}})
 same => n,Gosub(dncgate-message,s,1(${{to}},,,${{notice}},${{ARG2}}))
 same => n,NoOp(lab: message ${{GOSUB_RETVAL}} reason=${{DNCGATE_MESSAGE_REASON}})
""" + "".join(f"""
[lab-messages-{gateway}]
exten => _X.,1,Gosub(lab-message,s,1(${{EXTEN}},{gateway}))
exten => _+X.,1,Gosub(lab-message,s,1(${{EXTEN}},{gateway}))
""" for gateway in GATEWAYS)


class MessageLab(AsteriskLab):
    """The lab's Asterisk with res_pjsip_messaging and CURL loaded, an endpoint for the sender port
    (identified by the From user, as the lab's dialer is), the ``GATEWAYS`` (identified by their
    address first) and the shipped messages dialplan."""

    def _write_config(self) -> None:
        super()._write_config()
        etc = self.session_dir / "etc"
        with (etc / "modules.conf").open("a") as modules:
            modules.write("".join(f"load => {m}.so\n" for m in MESSAGE_MODULES))
        pjsip_conf = etc / "pjsip.conf"
        text = pjsip_conf.read_text()
        if "endpoint_identifier_order = username\n" not in text:
            raise LabError("the lab's pjsip.conf names no endpoint_identifier_order = username")
        pjsip_conf.write_text(text.replace("endpoint_identifier_order = username\n",
                                           "endpoint_identifier_order = ip,username\n"))
        with pjsip_conf.open("a") as pjsip:
            for user in (PORT, SUBSCRIBER.lstrip("+")):
                pjsip.write(f"\n[{user}](endpoint-common)\ncontext = from-uac\n")
            for gateway, address in GATEWAYS.items():
                pjsip.write(f"\n[{gateway}](endpoint-common)\ncontext = from-uac\n"
                            f"message_context = lab-messages-{gateway}\n"
                            f"\n[{gateway}-address]\ntype = identify\nendpoint = {gateway}\nmatch = {address}\n")
        shutil.copyfile(MESSAGES_DIALPLAN, etc / "extensions_dncgate_messages.conf")


@dataclass
class Receiver:
    """A SIPp taking one MESSAGE on its port (the recipient, or the sender's endpoint for the notice)."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def wait(self, timeout: float = 20.0) -> int:
        return self.process.wait(timeout=timeout)

    def messages(self) -> list[SipMessage]:
        with contextlib.suppress(OSError):
            return [m for m in parse_sipp_messages(self.log.read_text(errors="replace"))
                    if m.direction == "received" and m.method == "MESSAGE"]
        return []


@dataclass
class MessageEnv:
    gate: GateProcess
    lab: MessageLab
    workdir: Path
    sent: int = 0

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.gate.api(method, path, API_KEY, body)

    def send(self, to: str, body: str, *, sender: str = PORT, to_header: str | None = None,
             gateway: str | None = None) -> int:
        """SIPp sends one MESSAGE from ``sender`` to ``to`` (the Request-URI; the To header too unless
        ``to_header``) through Asterisk, from the address of ``gateway`` (one of ``GATEWAYS``) when
        given; its exit code (0: 202 came)."""
        self.sent += 1
        name = f"uac-{self.sent}"
        scenario = self.workdir / f"{name}.xml"
        scenario.write_text((SIPP_DIR / "message_uac.xml").read_text().replace("@PORT@", sender)
                            .replace("@TO_HEADER@", to_header or to)
                            .replace("@TO@", to).replace("@BODY@", body), encoding="utf-8")
        with (self.workdir / f"{name}.stdout").open("wb") as out:
            return subprocess.run(
                _sipp_cmd(scenario, self.workdir, name, f"{LOOPBACK}:{self.lab.sip_port}", "-p", str(free_udp_port()),
                          "-mp", str(ports.media_block()), "-timeout", "15s", "-timeout_error",
                          local_ip=GATEWAYS[gateway] if gateway is not None else LOOPBACK),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=30, check=False,
                cwd=self.workdir,
            ).returncode

    @contextlib.contextmanager
    def receiver(self, name: str) -> Iterator[Receiver]:
        port = free_udp_port()
        media = ports.media_block()
        with (self.workdir / f"{name}.stdout").open("wb") as out:
            process = subprocess.Popen(
                _sipp_cmd(SIPP_DIR / "message_uas.xml", self.workdir, name, "-p", str(port), "-mp", str(media),
                          "-timeout", "25s"),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        try:
            if not _wait_bound(process, [port]):
                raise LabError(f"the {name} SIPp did not bind {port}: see {self.workdir}")
            yield Receiver(port, process, self.workdir / f"{name}-messages.log")
        finally:
            _terminate(process)

    def outcomes(self, since: int, count: int) -> list[tuple[str, str]]:
        """The (gateway, GOSUB_RETVAL) of each message the lab's dialplan finished since log offset
        ``since``, once there are ``count`` (bounded polls; fewer after them)."""
        found: list[tuple[str, str]] = []
        for _ in range(POLLS):
            text = self.lab.log_text(since)
            found = list(zip(re.findall(r'"lab message .* -> \S* gateway=([\w-]*)"\)', text),
                             re.findall(r'"lab: message (\w+) reason=', text), strict=False))
            if len(found) >= count:
                break
            time.sleep(0.05)
        return found

    def audit(self, callee: str) -> list[dict[str, Any]]:
        return [r for r in self.gate.audit_tail(200) if r["tenant"] == "sms" and r["callee"] == callee]


@pytest.fixture(scope="module")
def env(asterisk_chroot: Path, redis_server: RedisServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessageEnv]:
    workdir = tmp_path_factory.mktemp("messages")
    load_lists(redis_server.url, LISTS)
    gate = GateProcess(workdir / "gate", redis_server.url, tenants=GATE_TENANTS)
    try:
        gate.start()
    except LabError as exc:
        pytest.fail(f"the real gate did not start: {exc}", pytrace=False)
    lab = MessageLab(asterisk_chroot, gate_port=gate.agi_port, artifacts=workdir / "calls",
                     extra_dialplan=LAB_DIALPLAN, endpoint_options={"message_context": "lab-messages"},
                     global_vars={"DNCGATE_HTTP": f"http://{LOOPBACK}:{gate.http_port}", "DNCGATE_API_KEY": API_KEY})
    try:
        lab.start()
        for module in MESSAGE_MODULES:
            if "Running" not in lab.cli(f"module show like {module}.so"):
                pytest.fail(f"Asterisk did not load {module}:\n{lab.diagnostics()}", pytrace=False)
        yield MessageEnv(gate, lab, workdir)
    finally:
        lab.stop()
        lab.cleanup()
        gate.stop()


def _grant(env: MessageEnv, number: str) -> None:
    """The recipient's consent to bank-1 (the port's entity), through the gate's API."""
    status, body = env.api("POST", "/v1/consents", {
        "number": number, "entity": "bank-1", "categories": [],
        "evidence": {"channel": "web", "captured_at": "2026-11-26T10:59:00+08:00", "source": "203.0.113.7",
                     "shown": "template:sms-optin-v1", "captured_by": "crm-7"}})
    assert status == 201, body


def _record(env: MessageEnv, callee: str, reason: str) -> dict[str, Any]:
    found = [r for r in env.audit(callee) if r["reason"] == reason]
    assert found, f"no {reason} decision for {callee} in the audit: {env.audit(callee)}"
    return found[-1]


def test_a_listed_recipient_gets_nothing_and_a_consented_one_gets_the_message(env: MessageEnv) -> None:
    _grant(env, TENANT_LISTED)
    with env.receiver("recipient") as recipient, env.receiver("notice") as notice:
        env.lab.set_global("LAB_MSG_UAS_PORT", recipient.port)
        env.lab.set_global("LAB_MSG_NOTICE_PORT", notice.port)
        assert env.send(LISTED, "Loans at 3.1% this week only") == 0
        assert notice.wait() == 0  # the gate's notice came back: the refusal is complete
        assert env.send(TENANT_LISTED, "Loans at 3.1% this week only") == 0
        assert recipient.wait() == 0
        [delivered] = recipient.messages()
        [refusal] = notice.messages()
    assert TENANT_LISTED in delivered.start_line
    assert delivered.body == "Loans at 3.1% this week only"
    assert refusal.body == NOTICE
    refused, allowed = _record(env, LISTED, "national_dnc"), _record(env, TENANT_LISTED, "allowed_consent")
    for record in (refused, allowed):
        assert (record["door"], record["caller_id"], record["entity"], record["purpose"]) == (
            "sip-message", PORT, "bank-1", "marketing")
    assert (refused["verdict"], allowed["verdict"]) == ("reject", "allow")


def test_a_stop_reply_withdraws_consent_for_the_next_message(env: MessageEnv) -> None:
    consented = SUBSCRIBER
    _grant(env, consented)
    with env.receiver("business") as business, env.receiver("notice-2") as notice:
        env.lab.set_global("LAB_MSG_UAS_PORT", business.port)
        env.lab.set_global("LAB_MSG_NOTICE_PORT", notice.port)
        assert env.send(PORT, "STOP", sender=consented.lstrip("+")) == 0  # the subscriber replies to the port
        assert business.wait() == 0  # a reply is forwarded to the business
        assert env.send(consented, "One more offer") == 0
        assert notice.wait() == 0  # refused: the notice came back
    [reply] = business.messages()
    assert reply.body == "STOP"
    assert _record(env, consented, "consent_revoked")["door"] == "sip-message"
    status, body = env.api("GET", f"/v1/consents?number={consented.replace('+', '%2B')}")
    assert status == 200, body
    assert [c["status"] for c in body["consents"] if c["entity"] == "bank-1"] == ["revoked"]


def test_the_number_checked_is_the_request_uri_delivered_to_not_the_to_header(env: MessageEnv) -> None:
    """Request-URI a listed number, To header a clear one: MessageSend delivers to the Request-URI
    (``sip:${EXTEN}@...``), so that is the number checked; the clear To is never what is decided."""
    clear, consented = "+12025550147", "+12015550166"
    _grant(env, consented)
    listed_before = len(env.audit(LISTED))
    with env.receiver("recipient-3") as recipient, env.receiver("notice-3") as notice:
        env.lab.set_global("LAB_MSG_UAS_PORT", recipient.port)
        env.lab.set_global("LAB_MSG_NOTICE_PORT", notice.port)
        assert env.send(LISTED, "Loans at 3.1% this week only", to_header=clear) == 0
        assert notice.wait() == 0  # refused: the notice came back
        assert env.send(consented, "Loans at 3.1% for you") == 0
        assert recipient.wait() == 0
        [delivered] = recipient.messages()  # the first MESSAGE it took: the consented one, not the listed one
        [refusal] = notice.messages()
    assert consented in delivered.start_line
    assert delivered.body == "Loans at 3.1% for you"
    assert refusal.body == NOTICE
    assert env.audit(clear) == []
    assert len(env.audit(LISTED)) == listed_before + 1
    assert _record(env, LISTED, "national_dnc")["door"] == "sip-message"


class FlakyGate:
    """An HTTP listener on loopback standing in for the gate's check: answers ``statuses`` in turn
    (503: the gate could not decide, e.g. an opt-out not recorded yet), then 200 deliver=true."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[bytes] = []
        self.asked = threading.Condition()
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with gate.asked:
                    gate.requests.append(body)
                    status = gate.statuses.pop(0) if gate.statuses else 200
                    gate.asked.notify_all()
                answer = b"deliver=true&verdict=allow&reason=allowed_clear&decision_id=flaky&direction=outbound"
                self.send_response(status)
                self.send_header("Content-Type", "application/x-www-form-urlencoded")
                self.send_header("Content-Length", str(len(answer) if status == 200 else 0))
                self.end_headers()
                if status == 200:
                    self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout: float = 20.0) -> bool:
        with self.asked:
            return self.asked.wait_for(lambda: len(self.requests) >= count, timeout=timeout)

    def __enter__(self) -> FlakyGate:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_check_without_an_answer_is_asked_again_a_bounded_number_of_times(env: MessageEnv) -> None:
    real = f"http://{LOOPBACK}:{env.gate.http_port}"
    with FlakyGate([503, 503, 503, 503]) as flaky, env.receiver("recipient-5") as recipient:
        env.lab.set_global("DNCGATE_HTTP", flaky.url)
        env.lab.set_global("LAB_MSG_UAS_PORT", recipient.port)
        try:
            # DNCGATE_MESSAGE_ATTEMPTS not set: 3 attempts
            assert env.send("+12025550148", "first") == 0  # 503 three times: failed, not forwarded
            assert flaky.wait_for(3)
            assert env.send("+12025550149", "second") == 0  # 503 once, then an answer: forwarded
            assert flaky.wait_for(5)
            assert recipient.wait() == 0
            [delivered] = recipient.messages()  # the first MESSAGE it took
        finally:
            env.lab.set_global("DNCGATE_HTTP", real)
    assert delivered.body == "second"
    assert len(flaky.requests) == 5  # 3 for the first (the bound), 2 for the second


def test_with_the_gate_down_only_a_listed_gateway_and_port_pair_is_forwarded(env: MessageEnv) -> None:
    """The lab's subroutine passes no purpose (ARG2 empty): with the gate down a message is service
    only when the gateway it came in from (ARG5, its endpoint's message_context) and its From user
    are a pair in DNCGATE_SERVICE_PORTS, matched whole. The same port from the other gateway, or
    from an endpoint that names no gateway, is what any sender can write: not forwarded. (The lab's
    marketing port is listed here only to have a sender the lab has endpoints for.)"""
    down = f"http://{LOOPBACK}:{ports.port()}"  # nothing listens there: every check gets no answer
    real = f"http://{LOOPBACK}:{env.gate.http_port}"
    changed = ("DNCGATE_MESSAGE_ATTEMPTS", "DNCGATE_SERVICE_ON_FAILURE", "DNCGATE_SERVICE_PORTS")
    before = {name: env.lab.get_global(name) for name in changed}
    refused = (  # each decided (failed, not forwarded) before the next is sent
        ("+12025550150", PORT, "other-gw"),  # the right port from the other gateway
        ("+12025550152", PORT, None),  # the right port from no gateway: the From user alone
        ("+12025550153", SUBSCRIBER.lstrip("+"), "bank-gw"),  # starts with a listed port, is not one
    )
    with env.receiver("recipient-6") as recipient:
        for name, value in (("DNCGATE_HTTP", down), ("LAB_MSG_UAS_PORT", recipient.port),
                            ("DNCGATE_MESSAGE_ATTEMPTS", 1), ("DNCGATE_SERVICE_ON_FAILURE", "allow")):
            env.lab.set_global(name, value)
        try:
            # set once: Asterisk runs the dialplan after its 202, so a change between sends races the first;
            # the bare port (the format that trusted the From user alone) counts for no gateway
            pairs = f"bank-gw/95588|bank-gw/{SUBSCRIBER[1:-1]}|bank-gw/{PORT}|{PORT}"
            env.lab.set_global("DNCGATE_SERVICE_PORTS", pairs)
            since = env.lab.log_size()
            for n, (to, sender, gateway) in enumerate(refused, 1):
                assert env.send(to, f"Your code is 100{n}", sender=sender, gateway=gateway) == 0
                assert env.outcomes(since, n)[-1] == (gateway or "", "failed")
            assert env.send("+12025550151", "Your code is 4711", gateway="bank-gw") == 0
            assert recipient.wait() == 0
            [delivered] = recipient.messages()  # the first MESSAGE it took
            outcomes = env.outcomes(since, len(refused) + 1)
        finally:
            env.lab.set_global("DNCGATE_HTTP", real)
            for name, value in before.items():
                env.lab.set_global(name, value)
    assert delivered.body == "Your code is 4711"
    assert outcomes == [("other-gw", "failed"), ("", "failed"), ("bank-gw", "failed"), ("bank-gw", "delivered")]
