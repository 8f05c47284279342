"""Consent and calling hours through the real Asterisk: SIPp -> Asterisk 22 -> ``dncgate serve`` (Redis).

* a consent granted through the HTTP API (``POST /v1/consents``) to ``bank-1`` for ``finance``
  lets a call from ``bank-1`` to a nationally listed number through (``allowed_consent``);
* the same consent revoked (``POST /v1/consents/revoke``) rejects it (``consent_revoked``, 607
  with the announcement as early media);
* a tenant whose calling window is closed now (the window is computed from the current time,
  in a zone pinned by an override, so the test does not depend on the hour CI runs at) rejects
  a marketing call (``outside_hours``) and still lets a service call through; a tenant whose
  window is open all day lets the same call through.

The gate and Asterisk here are this module's own: the gate has these tenants and the API on, and
Asterisk's lab dialplan has two extra routes. ``66<number>`` runs the shipped operator subroutine,
whose FastAGI line passes ``category`` and ``entity`` from the channel variables DNCGATE_CATEGORY
and DNCGATE_ENTITY (set per call through X-Lab-Var headers). ``4000`` is the subscriber
self-service IVR (``dialplan/asterisk/extensions_dncgate_ivr.conf``, tests/e2e/test_ivr_calls.py).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisServer
from tests.e2e.gate_process import LISTED, STANDARD_LISTS, AsteriskLogCursor, GateProcess, load_lists
from tests.e2e.lab import LOOPBACK, REPO_ROOT, AsteriskLab, CallResult, LabError, running_lab
from tests.e2e.test_gate_calls import assert_completed, assert_rejected_with_announcement, evidence

pytestmark = pytest.mark.e2e

API_KEY = "dncg_e2e-consent-key-0123456789abcdef"
IVR_DIALPLAN = REPO_ROOT / "dialplan" / "asterisk" / "extensions_dncgate_ivr.conf"
CONSENT_PREFIX = "66"  # "66" + number -> the operator subroutine that also passes category and entity
IVR_NUMBER = "4000"
OTHER_CLEAR = "+12015550131"  # on no list; the outside-hours calls


def closed_window(now: datetime) -> str:
    """A one-hour window starting 6 hours from ``now`` (UTC): closed now, and for hours to come."""
    start = (now.astimezone(UTC).hour + 6) % 24
    return f"{start:02d}:00-{start + 1:02d}:00" if start < 23 else "23:00-24:00"


def gate_tenants(now: datetime) -> str:
    """The tenants of this module's gate (appended to gate_process.gate_config), and the API key."""
    window = closed_window(now)
    return f"""\
[tenants.ivr]
region = "US"
reject_sip_code = 607

[tenants.ivr.hours]
enabled = false  # calling hours are on by default: these tests must not depend on the hour

[tenants.night]
region = "US"
reject_sip_code = 607

[tenants.night.hours]   # closed now, whatever the hour: see closed_window()
weekday = "{window}"
weekend = "{window}"
holiday = "{window}"
zone_overrides = {{ "+1" = "UTC" }}

[tenants.day]
region = "US"
reject_sip_code = 607

[tenants.day.hours]     # open all day
weekday = "00:00-24:00"
weekend = "00:00-24:00"
holiday = "00:00-24:00"
zone_overrides = {{ "+1" = "UTC" }}

[api]
enabled = true

[api.keys.e2e-ivr]
tenant = "ivr"
sha256 = "{hashlib.sha256(API_KEY.encode()).hexdigest()}"
"""


def extra_dialplan() -> str:
    return f"""
; tests/e2e/test_consent_calls.py, test_ivr_calls.py: merged into the lab's [from-uac]
[from-uac]
exten => _{CONSENT_PREFIX}X.,1,Gosub(lab-route-consent,s,1(${{EXTEN:{len(CONSENT_PREFIX)}}}))
 same => n,Hangup()
exten => {IVR_NUMBER},1,Gosub(dncgate-ivr,s,1(${{PJSIP_HEADER(read,X-Dncgate-Tenant)}},en))
 same => n,Hangup()

[lab-route-consent]
exten => s,1,NoOp(lab consent outbound ${{CALLERID(num)}} -> ${{ARG1}})
 same => n,Set(LOCAL(number)=${{ARG1}})
 same => n,Gosub(lab-import-vars,s,1)
 same => n,Set(LOCAL(tenant)=${{PJSIP_HEADER(read,X-Dncgate-Tenant)}})
 same => n,Set(LOCAL(purpose)=${{PJSIP_HEADER(read,X-Dncgate-Purpose)}})
 same => n,Gosub(dncgate-check,s,1(${{tenant}},${{purpose}},${{number}}))
 same => n,Dial(PJSIP/callee/sip:${{number}}@{LOOPBACK}:${{LAB_UAS_PORT}},15)
 same => n,Hangup()

{IVR_DIALPLAN.read_text()}
"""


@dataclass
class ConsentEnv:
    gate: GateProcess
    lab: AsteriskLab
    now: datetime

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.gate.api(method, path, API_KEY, body)

    def call(self, number: str, *, tenant: str, purpose: str = "marketing", entity: str = "",
             category: str = "") -> CallResult:
        variables = {"DNCGATE_ENTITY": entity, "DNCGATE_CATEGORY": category}
        return self.lab.place_call(CONSENT_PREFIX + number.lstrip("+"), tenant=tenant, purpose=purpose,
                                   variables={k: v for k, v in variables.items() if v})


@contextlib.contextmanager
def consent_env(chroot: Path, redis: RedisServer, workdir: Path) -> Iterator[ConsentEnv]:
    """This module's gate (own tenants, API on) and its own Asterisk with the extra routes."""
    now = datetime.now(UTC)
    load_lists(redis.url, STANDARD_LISTS)
    gate = GateProcess(workdir / "gate", redis.url, tenants=gate_tenants(now))
    try:
        gate.start()
    except LabError as exc:
        pytest.fail(f"the real gate did not start: {exc}", pytrace=False)
    try:
        with running_lab(chroot, gate_host=LOOPBACK, gate_port=gate.agi_port, artifacts=workdir / "calls",
                         extra_dialplan=extra_dialplan(), endpoint_options={"trust_id_inbound": "yes"}) as lab:
            yield ConsentEnv(gate, lab, now)
    finally:
        gate.stop()


@pytest.fixture(scope="module")
def env(asterisk_chroot: Path, redis_server: RedisServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsentEnv]:
    with consent_env(asterisk_chroot, redis_server, tmp_path_factory.mktemp("consent-calls")) as value:
        yield value


def web_evidence(shown: str) -> dict[str, str]:
    return {"channel": "web", "captured_at": datetime.now(UTC).isoformat(), "source": "203.0.113.7",
            "shown": shown, "captured_by": "e2e"}


# ------------------------------------------------------------------------------------- consent


def test_consent_lets_a_call_to_a_listed_number_through_until_revoked(env: ConsentEnv) -> None:
    log = AsteriskLogCursor(env.lab)
    # listed nationally: without consent the call is rejected
    call = env.call(LISTED, tenant="ivr", entity="bank-1", category="finance")
    assert_rejected_with_announcement(call, 607)
    assert log.decision().reason == "national_dnc"

    status, body = env.api("POST", "/v1/consents", {
        "number": LISTED, "entity": "bank-1", "categories": ["finance"], "evidence": web_evidence("template:optin-v3")})
    assert status == 201, body
    call = env.call(LISTED, tenant="ivr", entity="bank-1", category="finance")
    assert_completed(call)
    logged = log.decision()
    assert (logged.verdict, logged.reason) == ("allow", "allowed_consent")
    record = env.gate.audit_record(logged.decision_id)
    assert (record["callee"], record["reason"]) == (LISTED, "allowed_consent")

    # the consent covers finance only, and bank-1 only
    call = env.call(LISTED, tenant="ivr", entity="bank-1", category="travel")
    assert_rejected_with_announcement(call, 607)
    assert log.decision().reason == "national_dnc"
    call = env.call(LISTED, tenant="ivr", entity="shop-2", category="finance")
    assert_rejected_with_announcement(call, 607)
    assert log.decision().reason == "national_dnc"

    status, body = env.api("POST", "/v1/consents/revoke", {
        "number": LISTED, "entity": "bank-1", "evidence": web_evidence("template:optout-v1")})
    assert status == 201, body
    call = env.call(LISTED, tenant="ivr", entity="bank-1", category="finance")
    assert_rejected_with_announcement(call, 607)
    logged = log.decision()
    assert (logged.verdict, logged.reason) == ("reject", "consent_revoked")
    record = env.gate.audit_record(logged.decision_id)
    assert (record["reason"], record["sip_code"]) == ("consent_revoked", 607)


# ------------------------------------------------------------------------------- calling hours


def test_outside_hours_rejects_marketing(env: ConsentEnv) -> None:
    log = AsteriskLogCursor(env.lab)
    print(f"[outside hours] now {env.now:%H:%M} UTC, tenant night's window {closed_window(env.now)} UTC")
    call = env.call(OTHER_CLEAR, tenant="night")
    assert_rejected_with_announcement(call, 607)
    logged = log.decision()
    assert (logged.verdict, logged.reason) == ("reject", "outside_hours")
    record = env.gate.audit_record(logged.decision_id)
    assert record["reason"] == "outside_hours"
    print(f"[outside hours] detail: {record.get('detail')}")

    call = env.call(OTHER_CLEAR, tenant="night", purpose="service")  # hours bind marketing only
    assert_completed(call)
    assert log.decision().reason == "allowed_service"

    call = env.call(OTHER_CLEAR, tenant="day")  # the same number, a window open all day
    assert_completed(call)
    assert log.decision().reason == "allowed_clear"
    evidence("hours", call)
