"""With TICKETING_ADMIN_TOKEN set, requests need a bearer token; /health answers without one,
but says no more than ok or unavailable per part; the schema and the docs need a token."""

from __future__ import annotations

import httpx

from tests.processes import Processes


def test_a_request_without_the_token_is_refused_and_records_nothing(guarded_api: str) -> None:
    body = {"customer": "x", "plan": "crm-experts/gold", "starts_on": "2026-01-01"}
    refused = httpx.post(f"{guarded_api}/contracts", json=body)
    assert refused.status_code == 401 and refused.json()["error"]
    wrong = httpx.post(f"{guarded_api}/contracts", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = httpx.post(f"{guarded_api}/contracts", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 201


def test_health_answers_without_a_token_but_only_ok_or_unavailable(guarded_api: str) -> None:
    anonymous = httpx.get(f"{guarded_api}/health")
    assert anonymous.status_code == 200
    assert set(anonymous.json()["checks"].values()) <= {"ok", "unavailable"}
    assert httpx.get(f"{guarded_api}/health", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_schema_and_the_docs_need_a_token_once_an_admin_token_is_set(guarded_api: str) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert httpx.get(f"{guarded_api}{path}").status_code == 401, path
        assert httpx.get(f"{guarded_api}{path}", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_ticket_cannot_be_opened_before_its_contract_was_signed(backend: Processes) -> None:
    with httpx.Client(base_url=backend.base_url) as c:
        cid = c.post("/contracts", json={"customer": "x", "plan": "crm-experts/gold", "starts_on": "2026-01-01",
                                          "at": "2026-02-01T00:00:00Z"}).json()["contract_id"]
        r = c.post("/tickets", json={"contract_id": cid, "title": "t", "reporter": "r", "at": "2026-01-15T00:00:00Z"})
    assert r.status_code == 422 and "precedes the signing" in r.json()["error"]
