"""Helpers that build contracts and tickets over HTTP, the way a client would."""

from __future__ import annotations

from typing import Any

import httpx


def post(client: httpx.Client, path: str, expect: int = 200, **body: Any) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == expect, response.text
    return response.json()


def contract(client: httpx.Client, plan: str = "crm-experts/gold", **extra: Any) -> str:
    body = {"customer": "Acme", "plan": plan, "starts_on": "2026-01-01", "at": "2026-01-01T00:00:00Z", **extra}
    return str(post(client, "/contracts", 201, **body)["contract_id"])


def ticket(client: httpx.Client, contract_id: str, **extra: Any) -> str:
    body = {"contract_id": contract_id, "title": "Login fails", "reporter": "ana", **extra}
    return str(post(client, "/tickets", 201, **body)["ticket_id"])


def history(client: httpx.Client, contract_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/contracts/{contract_id}/history")
    assert response.status_code == 200, response.text
    return response.json()["events"]
