"""The console over HTTP against a real serve: sign-in, lockout, sessions, CSRF, roles, tenant scopes."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.console.console_gate import Client, ConsoleGate


@pytest.fixture(scope="module")
def acme_case(gate: ConsoleGate) -> str:
    """A case of tenant acme opened by an alert, and a decision of acme in the audit."""
    decision = gate.check("13800138000")
    gate.wait_audited(decision["decision_id"])
    opened = gate.alert("acme", "acme-api", "http-campaign-1")
    return str(opened["case"]["case_id"])


def test_without_a_session_pages_lead_to_the_sign_in_and_posts_are_refused(gate: ConsoleGate) -> None:
    client = Client(gate.base)
    assert client.get("/console/")[::2] == (303, "/console/login")
    assert client.get("/console/decisions")[::2] == (303, "/console/login")
    assert client.get("/")[::2] == (303, "/console/")
    status, page, _ = client.post("/console/cases/x/actions", {"action": "warn", "reason": "r"})
    assert status == 403
    assert "sign in first" in page
    status, page, _ = client.get("/console/login")
    assert status == 200
    assert '<label for="password">' in page


def test_sign_in_sets_a_strict_http_only_cookie(gate: ConsoleGate) -> None:
    client = Client(gate.base)
    assert client.sign_in("ann")[::2] == (303, "/console/")
    cookie = next(c for c in client.jar if c.name == "dncgate_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Strict"
    assert not cookie.secure  # plain HTTP on loopback; [console] secure_cookies or TLS sets it
    assert client.get("/console/")[0] == 200


def test_the_sign_in_form_needs_its_csrf_token(gate: ConsoleGate) -> None:
    client = Client(gate.base)
    client.get("/console/login")
    status, page, _ = client.post("/console/login", {"name": "ann", "password": "console test password"})
    assert status == 403
    assert "CSRF" in page


def test_wrong_passwords_lock_the_account(gate: ConsoleGate) -> None:
    client = Client(gate.base)
    for _ in range(3):
        status, page, _ = client.sign_in("eve", "not the password")
        assert status == 401
    assert "locked" in page
    status, page, _ = client.sign_in("eve")  # the right password, inside the lock
    assert status == 401
    assert "locked" in page
    assert client.sign_in("nobody")[0] == 401


def test_a_form_without_its_csrf_token_is_refused(gate: ConsoleGate, acme_case: str) -> None:
    client = Client(gate.base)
    client.sign_in("ann")
    path = f"/console/cases/{acme_case}/actions"
    status, page, _ = client.post(path, {"tenant": "acme", "action": "warn", "reason": "no token"})
    assert status == 403
    assert "CSRF" in page
    status, _, _ = client.post(path, {"tenant": "acme", "action": "warn", "reason": "wrong", "csrf": "x" * 43})
    assert status == 403
    _, page, _ = client.get(f"/console/cases/{acme_case}?tenant=acme")
    assert '<dd id="case-state">open</dd>' in page


def test_a_viewer_sees_but_cannot_act(gate: ConsoleGate, acme_case: str) -> None:
    client = Client(gate.base)
    client.sign_in("vic")
    status, page, _ = client.get(f"/console/cases/{acme_case}?tenant=acme")
    assert status == 200
    assert 'id="act"' not in page  # no form offered
    token = client.csrf()
    status, page, _ = client.post(f"/console/cases/{acme_case}/actions",
                                  {"tenant": "acme", "action": "warn", "reason": "viewer", "csrf": token})
    assert status == 403
    assert "a viewer cannot act" in page
    status, _, _ = client.post("/console/alerts/http-campaign-1/acknowledge", {"tenant": "acme", "csrf": token})
    assert status == 403
    assert client.post("/console/logout", {"csrf": token})[::2] == (303, "/console/login")
    assert client.get("/console/")[0] == 303


def test_a_resellers_operator_sees_and_acts_on_nothing_of_another_tenant(gate: ConsoleGate, acme_case: str) -> None:
    acme_decision = gate.check("13900139000")
    gate.wait_audited(acme_decision["decision_id"])
    client = Client(gate.base)
    client.sign_in("bob")
    token = client.csrf()
    for path in ("/console/?tenant=acme", "/console/decisions?tenant=acme", "/console/subscribers?tenant=acme",
                 "/console/alerts?tenant=acme", "/console/cases?tenant=acme", "/console/complaints?tenant=acme",
                 f"/console/cases/{acme_case}?tenant=acme", f"/console/cases/{acme_case}?tenant=beta",
                 f"/console/decisions/{acme_decision['decision_id']}"):
        assert client.get(path)[0] == 404, path
    for path, form in ((f"/console/cases/{acme_case}/actions", {"action": "warn", "reason": "x"}),
                       ("/console/alerts/http-campaign-1/acknowledge", {})):
        for tenant in ("acme", "beta"):  # named as acme's, or as its own: neither reaches acme's record
            status, _, _ = client.post(path, {**form, "tenant": tenant, "csrf": token})
            assert status == 404, (path, tenant)
    status, _, _ = client.post("/console/subscribers", {"number": "13800138000", "action": "decline_all",
                                                        "channel": "paper", "source": "x", "tenant": "acme",
                                                        "csrf": token})
    assert status == 404
    _, page, _ = client.get("/console/decisions?tenant=beta&number=13900139000")
    assert acme_decision["decision_id"] not in page
    _, page, _ = client.get("/console/?tenant=beta")
    assert 'value="acme"' not in page  # the tenant picker offers beta only
    ann = Client(gate.base)
    ann.sign_in("ann")
    _, page, _ = ann.get(f"/console/cases/{acme_case}?tenant=acme")
    assert '<dd id="case-state">open</dd>' in page  # nothing bob sent reached it


def test_a_decision_allowed_by_consent_names_its_ledger_record(gate: ConsoleGate) -> None:
    granted = gate.api("POST", "/v1/consents", "acme", {
        "number": "13900139000", "entity": "bank-1", "categories": ["finance"],
        "evidence": {"channel": "web", "captured_at": "2026-11-26T10:59:00+08:00", "source": "203.0.113.7",
                     "shown": "template:optin-v3", "captured_by": "crm-7"}})
    decision = gate.api("GET", "/v1/check?" + urllib.parse.urlencode(
        {"number": "13900139000", "purpose": "marketing", "entity": "bank-1", "category": "finance"}), "acme")
    assert decision["reason"] == "allowed_consent", decision
    gate.wait_audited(decision["decision_id"])
    client = Client(gate.base)
    client.sign_in("ann")
    status, page, _ = client.get(f"/console/decisions/{decision['decision_id']}")
    assert status == 200
    record = granted["consent"]["record_id"]
    assert record == decision["detail"]  # the ledger record the decision rests on
    assert f'<dd id="consent"><code>{record}</code></dd>' in page


def test_the_overview_marks_the_stale_list_in_both_languages(gate: ConsoleGate) -> None:
    client = Client(gate.base)
    client.sign_in("root")
    status, page, _ = client.get("/console/?tenant=acme")
    assert status == 200
    assert '<tr class="stale" data-list="national">' in page
    assert "STALE" in page
    assert "<svg" in page
    _, page, _ = client.get("/console/?tenant=acme&lang=zh")
    assert "已过期" in page
    assert "总览" in page
    assert client.get("/console/?tenant=beta")[0] == 200  # an admin sees every tenant


def test_bad_input_is_a_clear_answer(gate: ConsoleGate) -> None:
    client = Client(gate.base)
    client.sign_in("ann")
    status, page, _ = client.get("/console/decisions?tenant=acme&since=yesterday")
    assert status == 422
    assert "since" in page
    status, page, _ = client.get("/console/decisions?tenant=acme&number=12")
    assert status == 200
    assert "not a subscriber number" in page
    assert client.get("/console/cases?tenant=acme&state=nope")[0] == 422
    assert client.get("/console/decisions/nope")[0] == 404


def test_an_operator_acknowledges_an_alert_and_steps_a_complaint(gate: ConsoleGate, acme_case: str) -> None:
    complaint = gate.api("POST", "/v1/complaints", "acme", {
        "id": "c-console-1", "complainant": "+8613800138000", "originator_number": "+8610500001234",
        "called_at": gate.clock.now.isoformat(), "text": "a call I did not want"})["complaint"]
    client = Client(gate.base)
    client.sign_in("ann")
    token = client.csrf()
    status, _, where = client.post("/console/alerts/http-campaign-1/acknowledge", {"tenant": "acme", "csrf": token})
    assert (status, where) == (303, "/console/alerts?tenant=acme")
    alerts = gate.api("GET", "/v1/alerts", "acme")["alerts"]
    assert [a["acknowledged_by"] for a in alerts if a["alert_id"] == "http-campaign-1"] == ["console:ann"]
    _, page, _ = client.get("/console/complaints?tenant=acme")
    assert "a call I did not want" in page
    status, _, _ = client.post(f"/console/complaints/{complaint['id']}/steps",
                               {"tenant": "acme", "step": "forward", "csrf": token})
    assert status == 303
    stored = gate.api("GET", "/v1/complaints", "acme")["complaints"]
    assert [(c["forwarded_at"] is not None, c["steps_by"]) for c in stored if c["id"] == "c-console-1"] == [
        (True, {"forward": "console:ann"})]
    _, page, _ = client.get("/console/complaints?tenant=acme")
    assert "(console:ann)" in page
    status, page, _ = client.post(f"/console/complaints/{complaint['id']}/steps",
                                  {"tenant": "acme", "step": "forward", "csrf": token})
    assert status == 409  # done already: said, not done twice


def test_an_operator_records_a_subscribers_own_request(gate: ConsoleGate) -> None:
    assert gate.check("13700137000")["reason"] == "allowed_clear"
    client = Client(gate.base)
    client.sign_in("ann")
    token = client.csrf()
    form = {"tenant": "acme", "number": "137 0013 7000", "action": "decline_all", "channel": "paper",
            "source": "letter 2026-118", "shown": "signed form DNC-1", "csrf": token}
    assert client.post("/console/subscribers", {**form, "source": ""})[0] == 422  # where it came from is required
    status, _, where = client.post("/console/subscribers", form)
    assert (status, where) == (303, "/console/subscribers?tenant=acme&number=%2B8613700137000")
    _, page, _ = client.get(where)
    assert "declines all marketing" in page
    assert "letter 2026-118" in page
    assert "console:ann" in page  # who captured it
    assert gate.check("13700137000")["reason"] == "category_declined"  # the next decision follows it
