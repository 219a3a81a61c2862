-- The ticket list read model: one row per ticket with its current status.
CREATE TABLE IF NOT EXISTS {schema}.tickets (
    ticket_id   text PRIMARY KEY,
    contract_id text NOT NULL,
    title       text NOT NULL,
    reporter    text NOT NULL,
    channel     text NOT NULL,
    priority    text NOT NULL,
    category    text,
    status      text NOT NULL,
    opened_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    minutes     int NOT NULL DEFAULT 0,
    position    bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_contract_idx ON {schema}.tickets (contract_id);
-- An erased contract's tickets keep their row without their personal fields (docs/audit.md).
ALTER TABLE {schema}.tickets ALTER COLUMN title DROP NOT NULL, ALTER COLUMN reporter DROP NOT NULL;
