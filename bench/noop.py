"""A bare FastAPI app with no-op endpoints taking the same bodies as the command routes, served
the way `ticketing api` serves the real one: the ceiling the command path is measured against.

`python -m bench.noop PORT` serves it on 127.0.0.1:PORT, with as many uvicorn workers as
TICKETING_API_WORKERS asks of the API (default 1).
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

from fastapi import FastAPI

from infra.http import models
from infra.http.app import NO_TELEMETRY

app = FastAPI(title="no-op", telemetry=NO_TELEMETRY)  # as the API is served


@app.post("/contracts", status_code=201)
def sign(body: models.SignContract) -> dict[str, Any]:
    return {"contract_id": str(uuid.uuid4()), "position": 1}


@app.post("/tickets", status_code=201)
def open_ticket(body: models.OpenTicket) -> dict[str, Any]:
    return {"ticket_id": str(uuid.uuid4()), "position": 1}


@app.post("/tickets/{ticket_id}/time")
def time_entry(ticket_id: uuid.UUID, body: models.TimeEntry) -> dict[str, Any]:
    return {"position": 1}


@app.post("/tickets/{ticket_id}/classify")
def classify(ticket_id: uuid.UUID, body: models.Classify) -> dict[str, Any]:
    return {"position": 1}


@app.post("/tickets/{ticket_id}/{verb}")
def simple(ticket_id: uuid.UUID, verb: str, body: models.Because | None = None) -> dict[str, Any]:
    return {"position": 1}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run("bench.noop:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
                workers=int(os.environ.get("TICKETING_API_WORKERS", "1")))
