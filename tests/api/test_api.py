"""The /v1 API: consents, subscribers, check; tenant isolation; JSON errors for every bad request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import CLEAR, GLOBEX_KEY, LISTED, NIGHT_KEY, Api, auth, evidence


def grant(number: str = LISTED, entity: str = "bank-1", **extra: Any) -> dict[str, Any]:
    return {"number": number, "entity": entity, "evidence": evidence()} | extra


async def check(api: Api, number: str = LISTED, key: str | None = None, **params: str) -> dict[str, Any]:
    status, body = await api.get("/v1/check", **({"key": key} if key else {}), number=number,
                                 **({"purpose": "marketing"} | params))
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_openapi_spec_covers_every_route(api: Api) -> None:
    response = await api.client.get("/v1/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.")
    routes = {r.resource.canonical for r in api.client.app.router.routes() if r.resource is not None}
    assert {r for r in routes if r.startswith("/v1")} == set(spec["paths"])


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}])
async def test_requests_without_a_valid_key_are_refused(api: Api, headers: dict[str, str]) -> None:
    response = await api.client.get("/v1/check", params={"number": CLEAR}, headers=headers)
    assert response.status == 401
    body = await response.json()
    assert body["error"]["code"] == "unauthorized"


async def test_consent_allows_a_listed_callee_until_revoked(api: Api) -> None:
    assert (await check(api, entity="bank-1"))["reason"] == "national_dnc"
    status, body = await api.post("/v1/consents", grant(categories=["finance"]))
    assert status == 201, body
    assert body["record"]["action"] == "grant"
    assert body["record"]["evidence"]["shown"] == "template:optin-v3"
    assert body["consent"]["status"] == "granted"
    decision = await check(api, entity="bank-1", category="finance")
    assert (decision["verdict"], decision["reason"]) == ("allow", "allowed_consent")
    assert decision["detail"] == body["record"]["id"]
    assert (await check(api, entity="bank-1", category="travel"))["reason"] == "national_dnc"
    assert (await check(api, entity="bank-2", category="finance"))["reason"] == "national_dnc"
    status, revoked = await api.post("/v1/consents/revoke", grant())
    assert status == 201
    assert revoked["consent"]["status"] == "revoked"
    decision = await check(api, entity="bank-1", category="finance")
    assert (decision["verdict"], decision["reason"]) == ("reject", "consent_revoked")
    status, listing = await api.get("/v1/consents", number="13800138000", history="true")
    assert status == 200
    assert [c["status"] for c in listing["consents"]] == ["revoked"]
    assert [r["action"] for r in listing["history"]] == ["grant", "revoke"]
    assert listing["history"][1]["prev_hash"] == listing["history"][0]["hash"]


async def test_one_tenant_never_reads_or_changes_another_tenants_data(api: Api) -> None:
    await api.post("/v1/consents", grant())
    await api.post("/v1/subscribers", {"number": CLEAR, "decline": "all", "evidence": evidence()})
    status, listing = await api.get("/v1/consents", key=GLOBEX_KEY, number=LISTED, history="true")
    assert status == 200
    assert listing["consents"] == []
    assert listing["history"] == []
    status, prefs = await api.get(f"/v1/subscribers/{CLEAR}", key=GLOBEX_KEY)
    assert (status, prefs["declines_all_marketing"]) == (200, False)
    # A revoke sent with globex's key lands in globex's ledger: acme's consent stands.
    status, _ = await api.post("/v1/consents/revoke", grant(), key=GLOBEX_KEY)
    assert status == 201
    assert (await check(api, entity="bank-1"))["reason"] == "allowed_consent"
    assert (await check(api, key=GLOBEX_KEY, entity="bank-1"))["reason"] == "consent_revoked"
    # The tenant comes from the key: a tenant named in the body or query is ignored.
    status, body = await api.post("/v1/consents", grant(CLEAR, tenant="acme"), key=GLOBEX_KEY)
    assert (status, body["record"]["tenant"]) == (201, "globex")
    assert (await check(api, CLEAR, key=GLOBEX_KEY, tenant="acme", entity="bank-1"))["reason"] == "allowed_consent"
    assert (await api.get("/v1/consents", number=CLEAR))[1]["consents"] == []


async def test_subscriber_preferences_and_blocks(api: Api) -> None:
    status, body = await api.post("/v1/subscribers", {"number": CLEAR, "decline": "categories",
                                                      "categories": ["finance"], "evidence": evidence(channel="sms")})
    assert status == 201, body
    assert body["preferences"]["declined_categories"] == ["finance"]
    assert (await check(api, CLEAR, category="finance"))["reason"] == "category_declined"
    assert (await check(api, CLEAR, category="food"))["reason"] == "allowed_clear"
    await api.post("/v1/subscribers", {"number": CLEAR, "decline": "all", "evidence": evidence()})
    assert (await check(api, CLEAR, category="food"))["reason"] == "category_declined"
    assert (await check(api, CLEAR, purpose="service"))["reason"] == "allowed_service"
    status, body = await api.post("/v1/subscribers/blocks", {"number": CLEAR, "entity": "collector-9",
                                                             "evidence": evidence()})
    assert (status, body["preferences"]["blocked_entities"]) == (201, ["collector-9"])
    blocked = await check(api, CLEAR, purpose="service", entity="collector-9")
    assert (blocked["verdict"], blocked["reason"]) == ("reject", "subscriber_block")
    assert (await check(api, CLEAR, purpose="service", entity="bank-1"))["reason"] == "allowed_service"
    status, body = await api.post("/v1/subscribers/withdraw", {"number": CLEAR, "evidence": evidence()})
    assert (status, body["preferences"]["declines_all_marketing"]) == (201, False)
    assert (await check(api, CLEAR, category="food"))["reason"] == "allowed_clear"
    await api.post("/v1/subscribers/unblock", {"number": CLEAR, "entity": "collector-9", "evidence": evidence()})
    assert (await check(api, CLEAR, purpose="service", entity="collector-9"))["reason"] == "allowed_service"
    outbox = await api.ledger.outbox("acme")
    assert [e.action.value for e in outbox] == ["decline", "decline", "withdraw"]


async def test_check_outside_the_callees_hours(api: Api) -> None:
    await api.post("/v1/consents", grant(CLEAR), key=NIGHT_KEY)
    decision = await check(api, CLEAR, key=NIGHT_KEY, entity="bank-1")
    assert (decision["verdict"], decision["reason"]) == ("reject", "outside_hours")
    assert "America/New_York" in decision["detail"]
    assert (await check(api, CLEAR, key=NIGHT_KEY, purpose="service"))["reason"] == "allowed_service"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"[1, 2]", 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (json.dumps({"entity": "bank-1", "evidence": evidence()}).encode(), 422, "missing_field"),
        (json.dumps(grant(number="12")).encode(), 422, "invalid_number"),
        (json.dumps(grant(number=13800138000)).encode(), 422, "invalid_field"),
        (json.dumps(grant(entity="bank one")).encode(), 422, "invalid_record"),
        (json.dumps(grant(categories=["astrology"])).encode(), 422, "invalid_record"),
        (json.dumps(grant(categories="finance")).encode(), 422, "invalid_field"),
        (json.dumps({"number": LISTED, "entity": "b"}).encode(), 422, "missing_field"),
        (json.dumps(grant(evidence=evidence(channel="fax"))).encode(), 422, "invalid_field"),
        (json.dumps(grant(evidence=evidence(captured_at="yesterday"))).encode(), 422, "invalid_field"),
        (json.dumps(grant(evidence=evidence(captured_at="2026-11-26T10:00:00"))).encode(), 422, "invalid_field"),
        (json.dumps(grant(evidence=evidence(document_sha256="abc"))).encode(), 422, "invalid_field"),
        (json.dumps(grant(expires_at="2020-01-01T00:00:00Z", valid_from="2021-01-01T00:00:00Z")).encode(), 422,
         "invalid_record"),
        (b"{" + b'"x": "' + b"a" * 70_000 + b'"}', 413, "body_too_large"),
        (b"[" * 5000 + b"]" * 5000, 400, "malformed_json"),
        (json.dumps(grant(evidence=evidence(captured_at="0001-01-01T00:00:00+05:00"))).encode(), 422,
         "invalid_field"),
        (json.dumps(grant(expires_at="9999-12-31T23:00:00-05:00")).encode(), 422, "invalid_field"),
    ],
)
async def test_malformed_bodies_get_json_errors(api: Api, body: bytes, status: int, code: str) -> None:
    headers = auth() | {"Content-Type": "application/json"}
    response = await api.client.post("/v1/consents", data=body, headers=headers)
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error["message"]
    assert [e async for e in api.ledger.history("acme")] == []


async def test_wrong_content_type_method_and_path(api: Api) -> None:
    response = await api.client.post("/v1/consents", data="number=1", headers=auth())
    assert (response.status, (await response.json())["error"]["code"]) == (415, "unsupported_media_type")
    response = await api.client.delete("/v1/consents", headers=auth())
    assert (response.status, (await response.json())["error"]["code"]) == (405, "method_not_allowed")
    response = await api.client.get("/v1/nothing-here", headers=auth())
    assert (response.status, (await response.json())["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("params", "code"),
    [({"purpose": "spam"}, "invalid_field"), ({"category": "astrology"}, "invalid_field"),
     ({"number": ""}, "missing_field")],
)
async def test_bad_check_queries(api: Api, params: dict[str, str], code: str) -> None:
    status, body = await api.get("/v1/check", **({"number": CLEAR} | params))
    assert (status, body["error"]["code"]) == (422, code)


async def test_an_invalid_number_is_a_decision(api: Api) -> None:
    decision = await check(api, "12")
    assert (decision["verdict"], decision["reason"]) == ("reject", "invalid_number")


async def test_store_trouble_is_a_503(api: Api) -> None:
    await api.ledger.close()
    status, body = await api.post("/v1/consents", grant())
    assert (status, body["error"]["code"]) == (503, "store_unavailable")


async def test_health_and_metrics_keep_their_own_responses(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["status"] == "ok"
    response = await api.client.get("/nothing")
    assert response.status == 404
    assert response.content_type == "text/plain"  # only /v1 answers errors as JSON
