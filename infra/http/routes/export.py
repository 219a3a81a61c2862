"""A contract's export as a file: GET /contracts/{id}/export?format=jsonl|avro|mysql (docs/audit.md).

Exporting records `Contract.Exported` (who asked, when, which format) and answers the
contract's events committed up to and with that event, each with its actor and its hash-chain
link, as a download; the file's header names the head a proof taken then answers. The file
is written by infra/exports/contract.py, the same code `ticketing export` runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from infra.exports.contract import export_contract
from infra.exports.files import MEDIA_TYPES
from infra.http import models
from infra.http.app import Calling
from infra.http.errors import Declared
from infra.http.queries import Contract

Format = Annotated[models.ExportFormat, Query(
    description="jsonl: a header line, then one JSON line per event; avro: an Avro object container file;"
                " mysql: a dump (CREATE TABLE and INSERT statements) for MySQL or MariaDB, with the figures")]
FILE: dict[int | str, dict[str, Any]] = {200: {"description": "the export, as a file to download (Content-Disposition: attachment)",
              "content": {MEDIA_TYPES["jsonl"]: {"schema": {"type": "string"}},
                          MEDIA_TYPES["avro"]: {"schema": {"type": "string", "format": "binary"}},
                          MEDIA_TYPES["mysql"]: {"schema": {"type": "string"}}}}}


def routes(backend: Any) -> APIRouter:
    r = APIRouter(route_class=Declared, tags=["audit"])

    # 409: the contract kept changing under the recording of the export (try again).
    @r.get("/contracts/{contract_id}/export", response_class=Response, responses={**FILE, **models.problems(409)})
    def export(contract: Contract, format: Format, caller: Calling) -> Response:
        made = export_contract(backend.store, contract, format, caller.actor)
        return Response(made.content, media_type=made.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})

    return r
