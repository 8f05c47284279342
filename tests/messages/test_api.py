"""``POST /v1/messages/check``: JSON or form (Asterisk's CURL), a JSON or form answer, and bad
requests answered with what is wrong."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dncgate.api.app import install_api
from dncgate.api.context import ApiContext
from dncgate.api.keys import hash_key
from dncgate.http import make_app
from dncgate.metrics import GateMetrics
from dncgate.settings import ApiKeySettings, ApiSettings
from tests.messages.conftest import API_KEY, CONSENTED, LISTED, MARKETING_PORT, SERVICE_PORT, Lab

AUTH = {"Authorization": f"Bearer {API_KEY}"}
Client = TestClient  # type: ignore[type-arg]


async def _post(client: Client, body: Any, **kw: Any) -> tuple[int, Any]:
    response = await client.post("/v1/messages/check", json=body, headers=AUTH, **kw)
    return response.status, await response.json()


async def test_a_message_is_checked_and_audited_with_the_sip_message_door(client: Client, lab: Lab) -> None:
    status, body = await _post(client, {"from": MARKETING_PORT, "to": f"sip:{LISTED}@127.0.0.1", "body": "Sale!"})
    assert status == 200, body
    assert (body["verdict"], body["deliver"], body["reason"], body["recipient"]) == (
        "reject", False, "national_dnc", LISTED)
    assert (body["sender_port"], body["sender_registered_for"], body["purpose"]) == (
        MARKETING_PORT, "marketing", "marketing")
    assert body["notice"].startswith("Not delivered")
    [record] = await lab.audit_records()
    assert (record.door, record.caller_id, record.entity, record.account, record.decision_id) == (
        "sip-message", MARKETING_PORT, "bank-1", "sms-gw", body["decision_id"])


async def test_a_form_post_gets_a_form_answer_for_asterisks_hash(client: Client) -> None:
    response = await client.post("/v1/messages/check?format=form", headers=AUTH, data={
        "from": MARKETING_PORT, "to": CONSENTED, "body": "Rates 3.1% - reply STOP", "category": "finance"})
    assert response.status == 200
    assert response.content_type == "application/x-www-form-urlencoded"
    answer = {k: v[0] for k, v in parse_qs(await response.text(), keep_blank_values=True).items()}
    assert (answer["verdict"], answer["reason"], answer["deliver"], answer["notice"]) == (
        "allow", "allowed_consent", "true", "")


async def test_an_opt_out_reply_over_the_api_refuses_the_next_message(client: Client) -> None:
    message = {"from": MARKETING_PORT, "to": CONSENTED, "body": "Rates", "category": "finance"}
    assert (await _post(client, message))[1]["reason"] == "allowed_consent"
    status, reply = await _post(client, {"from": CONSENTED, "to": MARKETING_PORT, "body": "退订", "message_id": "a1"})
    assert status == 200, reply
    assert (reply["direction"], reply["deliver"], reply["opt_out_record"] is not None) == ("reply", True, True)
    assert "reason" not in reply  # a reply is not decided
    assert (await _post(client, message))[1]["reason"] == "consent_revoked"


async def test_a_service_port_sending_marketing_is_refused(client: Client, lab: Lab) -> None:
    status, body = await _post(client, {"from": SERVICE_PORT, "to": CONSENTED, "body": "Sale", "purpose": "marketing"})
    assert (status, body["reason"]) == (200, "service_port_misuse")
    await lab.service.misuse.drain()
    assert [a.rule for a in lab.alerts] == ["service_port_misuse"]


@pytest.mark.parametrize(("body", "status", "code", "message"), [
    ({"from": MARKETING_PORT, "body": "hi"}, 422, "invalid_message", "recipient: required"),
    ({"from": MARKETING_PORT, "to": LISTED, "body": 7}, 422, "invalid_field", "body: expected a string"),
    ({"from": MARKETING_PORT, "to": LISTED, "body": "x" * 5000}, 422, "invalid_message", "body: 5000 characters"),
    ({"from": "no port!", "to": LISTED}, 422, "invalid_message", "sender: 'no port!' is not a sender number"),
    ({"from": MARKETING_PORT, "to": LISTED, "door": "fax"}, 422, "invalid_field", "door: one of api, sip-message"),
    ({"from": MARKETING_PORT, "to": LISTED, "purpose": "spam"}, 422, "invalid_message", "purpose: one of"),
    ([1, 2], 400, "malformed_json", "the body must be a JSON object"),
])
async def test_a_bad_message_request_says_what_is_wrong(
    client: Client, lab: Lab, body: Any, status: int, code: str, message: str,
) -> None:
    got_status, got = await _post(client, body)
    assert (got_status, got["error"]["code"]) == (status, code)
    assert got["error"]["message"].startswith(message)
    assert await lab.audit_records() == []


async def test_a_body_that_is_not_json_or_a_form(client: Client) -> None:
    response = await client.post("/v1/messages/check", data=b"\xff\xfe", headers=AUTH | {
        "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_form"
    response = await client.post("/v1/messages/check", data=b"{nope", headers=AUTH | {
        "Content-Type": "application/json"})
    assert (response.status, (await response.json())["error"]["code"]) == (400, "malformed_json")


async def test_message_checks_are_404_until_enabled(lab: Lab) -> None:
    app = make_app(lab.store, GateMetrics(), {"agi": False, "esl": False})
    keys = {"sms-gw": ApiKeySettings("acme", hash_key(API_KEY))}
    install_api(app, ApiContext.of(lab.gate, lab.ledger, ApiSettings(enabled=True, keys=keys)))
    async with TestClient(TestServer(app, host="127.0.0.1")) as plain:
        status, body = await _post(plain, {"from": MARKETING_PORT, "to": LISTED})
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_without_a_key_a_message_check_is_refused(client: Client) -> None:
    response = await client.post("/v1/messages/check", json={"from": MARKETING_PORT, "to": LISTED})
    assert response.status == 401
