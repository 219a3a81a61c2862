"""The notices the projections publish (through their outbox), as Avro: one topic per read
model, a codec per notice schema, and the decoders that consumers and tests use. The
notices' names and topics are part of the wire format (docs/wire-format.md)."""

from __future__ import annotations

from typing import Any

from infra.kafka.avro import H_NOTICE_TYPE, NoticeCodec
from projections.availability import BudgetNotice
from projections.ledger import EXHAUSTED, LOW
from projections.ledger_rows import Notice
from projections.sla import Breach

SLA_TOPIC = "ticketing.notices.sla.v1"
LEDGER_TOPIC = "ticketing.notices.ledger.v1"
AVAILABILITY_TOPIC = "ticketing.notices.availability.v1"
REBUILD_TOPIC = "ticketing.notices.rebuild.v1"

# -- SLA: a clock passed its due ----------------------------------------------------------------

BREACHED = NoticeCodec("ticketing.v1.SlaBreached", "Sla.Breached")


def encode_breach(breach: Breach) -> tuple[bytes, dict[str, str]]:
    """The notice's Avro value (no framing byte) and headers naming its type and schema."""
    return BREACHED.encode({"notice_id": breach.notice_id, **vars(breach)})


def decode_breach(value: bytes) -> dict[str, Any]:
    """The breach notice record of a message value."""
    return BREACHED.decode(value)


# -- ledger: a balance crossed its low threshold, or ran out --------------------------------------

BALANCE_SCHEMAS = {LOW: "ticketing.v1.LowBalanceReached", EXHAUSTED: "ticketing.v1.BalanceExhausted"}
BALANCE_CODECS = {kind: NoticeCodec(name, name) for kind, name in BALANCE_SCHEMAS.items()}


def encode_balance(notice: Notice) -> tuple[bytes, dict[str, str]]:
    """The notice's Avro value (no framing byte) and headers naming its schema."""
    record = {
        "notice_id": notice.notice_id, "contract_id": notice.contract_id, "period": notice.period,
        "crossing": notice.crossing, "unit": notice.unit, "granted": notice.granted,
        "used": notice.used, "balance": notice.granted - notice.used, "ticket_id": notice.ticket_id,
        "position": notice.position, "occurred_at": notice.occurred_at,
    }
    if notice.kind == LOW:
        record["threshold"] = notice.threshold
    return BALANCE_CODECS[notice.kind].encode(record)


def decode_balance(value: bytes, headers: list[tuple[str, bytes]]) -> tuple[str, dict[str, Any]]:
    """The schema name and record of a balance notice message."""
    name = dict(headers)[H_NOTICE_TYPE].decode()
    kind = next(k for k, n in BALANCE_SCHEMAS.items() if n == name)
    record = BALANCE_CODECS[kind].decode(value)
    assert isinstance(record, dict)
    return name, record


# -- availability: a month's error budget is spent ------------------------------------------------

BUDGET_EXHAUSTED = NoticeCodec("ticketing.v1.ErrorBudgetExhausted", "Availability.ErrorBudgetExhausted")


def encode_budget(notice: BudgetNotice) -> tuple[bytes, dict[str, str]]:
    """The notice's Avro value (no framing byte) and headers naming its type and schema."""
    f = notice.figures
    record = {
        "notice_id": notice.notice_id, "contract_id": notice.contract_id, "month": f.month,
        "time_zone": notice.time_zone, "target_pct": f.target_pct,
        "minutes_in_month": f.minutes_in_month, "allowed_downtime_minutes": f.allowed_downtime_minutes,
        "downtime_minutes": f.downtime_minutes, "maintenance_minutes": f.maintenance_minutes,
        "budget_left_minutes": f.budget_left_minutes, "availability_pct": f.availability_pct,
        "exhausted_at": notice.exhausted_at, "decided_at": notice.decided_at,
    }
    return BUDGET_EXHAUSTED.encode(record)


def decode_budget(value: bytes) -> dict[str, Any]:
    """The budget notice record of a message value."""
    return BUDGET_EXHAUSTED.decode(value)


# -- rebuilds: a read model was switched to tables built with other rules -------------------------

REBUILT = NoticeCodec("ticketing.v1.ProjectionRebuilt", "Projection.Rebuilt")


def encode_rebuilt(record: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The notice's Avro value (no framing byte) and headers naming its type and schema."""
    return REBUILT.encode(record)


def decode_rebuilt(value: bytes) -> dict[str, Any]:
    """The rebuild notice record of a message value."""
    return REBUILT.decode(value)
