-- A statement per resolution of a ticket: what it had cost, and the balance after.
CREATE TABLE IF NOT EXISTS {schema}.statements (
    ticket_id     text NOT NULL,
    position      bigint NOT NULL,
    contract_id   text NOT NULL,
    resolved_at   timestamptz NOT NULL,
    period        text NOT NULL,
    unit          text NOT NULL,
    minutes       bigint NOT NULL,
    charge        bigint NOT NULL,
    overage       bigint NOT NULL,
    balance_after bigint,
    PRIMARY KEY (ticket_id, position)
);
