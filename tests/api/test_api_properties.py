"""Property tests on the API: whatever JSON arrives, the answer is a documented status with a JSON
body (an error with a code and a message, or a record), never a 500, and a tenant's writes never
show up for another tenant."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import ACME_KEY, GLOBEX_KEY, Api, auth, evidence

PATHS = ["/v1/consents", "/v1/consents/revoke", "/v1/subscribers", "/v1/subscribers/withdraw",
         "/v1/subscribers/blocks", "/v1/subscribers/unblock"]
ERROR_CODES = {"malformed_json", "missing_field", "invalid_field", "invalid_number", "invalid_record",
               "unsupported_media_type"}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=12)
numbers = st.sampled_from(["+8613800138000", "13900139000", "12", "", "+1", "abc", "+86 139 0013 9001"]) | st.text(
    max_size=20)
fields = st.fixed_dictionaries({}, optional={
    "number": numbers | json_values,
    "entity": st.sampled_from(["bank-1", "shop.2", "x" * 65, "", "a b"]) | json_values,
    "categories": st.lists(st.sampled_from(["finance", "food", "astrology", "*"]), max_size=3) | json_values,
    "decline": st.sampled_from(["all", "categories", "none"]) | json_values,
    "valid_from": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01", "soon"]) | json_values,
    "expires_at": st.sampled_from(["2027-01-01T00:00:00+08:00", "2020-01-01T00:00:00Z"]) | json_values,
    "evidence": st.just(evidence()) | st.fixed_dictionaries({}, optional={
        k: st.text(max_size=12) | json_values for k in ("channel", "captured_at", "source", "shown", "captured_by",
                                                       "document_sha256")}) | json_values,
})


def _check_answer(status: int, body: Any) -> None:
    assert status in {201, 400, 413, 415, 422}, (status, body)
    if status == 201:
        assert body["record"]["tenant"] in {"acme", "globex"}
        assert len(body["record"]["hash"]) == 64
    else:
        assert set(body) == {"error"}
        assert body["error"]["code"] in ERROR_CODES
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]


@SETTINGS
@given(path=st.sampled_from(PATHS), body=fields | json_values, key=st.sampled_from([ACME_KEY, GLOBEX_KEY]))
async def test_any_json_body_gets_a_documented_answer(api: Api, path: str, body: Any, key: str) -> None:
    response = await api.client.post(path, data=json.dumps(body), headers=auth(key) | {
        "Content-Type": "application/json"})
    _check_answer(response.status, await response.json())


@SETTINGS
@given(path=st.sampled_from(PATHS), raw=st.binary(max_size=200))
async def test_any_bytes_get_a_documented_answer(api: Api, path: str, raw: bytes) -> None:
    response = await api.client.post(path, data=raw, headers=auth() | {"Content-Type": "application/json"})
    _check_answer(response.status, await response.json())


@SETTINGS
@given(params=st.dictionaries(st.sampled_from(["number", "purpose", "category", "entity", "tenant"]),
                              st.text(max_size=40), max_size=5))
async def test_any_check_query_is_a_decision_or_a_422(api: Api, params: dict[str, str]) -> None:
    response = await api.client.get("/v1/check", params=params, headers=auth())
    body = await response.json()
    assert response.status in {200, 422}, body
    if response.status == 200:
        assert body["verdict"] in {"allow", "reject"}
        assert body["decision_id"]
    else:
        assert body["error"]["code"] in {"missing_field", "invalid_field"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entity=st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), suffix=st.integers(0, 9999))
async def test_writes_of_one_tenant_are_never_seen_by_another(api: Api, entity: str, suffix: int) -> None:
    number = f"+86139{suffix:08d}"
    status, _ = await api.post("/v1/consents", {"number": number, "entity": entity, "evidence": evidence()},
                               key=GLOBEX_KEY)
    assert status == 201
    status, listing = await api.get("/v1/consents", number=number, history="true")
    assert status == 200
    assert listing["consents"] == []
    assert listing["history"] == []
    decision = (await api.get("/v1/check", number=number, entity=entity, purpose="marketing"))[1]
    assert decision["reason"] != "allowed_consent"
