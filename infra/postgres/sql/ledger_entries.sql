-- The ledger's entries: one per time entry, its raw minutes and its charge kept apart.
CREATE TABLE IF NOT EXISTS {schema}.entries (
    position    bigint PRIMARY KEY,
    contract_id text NOT NULL,
    period      text NOT NULL,
    ticket_id   text NOT NULL,
    kind        text NOT NULL,
    minutes     int NOT NULL,
    charge      int NOT NULL,
    overage     int NOT NULL,
    at          timestamptz NOT NULL,
    engineer    text
);
CREATE INDEX IF NOT EXISTS entries_period_idx ON {schema}.entries (contract_id, period, position);
CREATE INDEX IF NOT EXISTS entries_ticket_idx ON {schema}.entries (ticket_id, position);
