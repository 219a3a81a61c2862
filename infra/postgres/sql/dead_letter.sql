-- Messages the runner could not decode or apply, parked with the reason (a parked message
-- counts as consumed). `ticketing dead-letters` lists them, retries them (`applied`) or
-- discards them (`discarded`); a settled one is kept, with who settled it, when and why.
CREATE TABLE IF NOT EXISTS {schema}.dead_letter (
    id           bigserial PRIMARY KEY,
    topic        text   NOT NULL,
    partition    int    NOT NULL,
    kafka_offset bigint NOT NULL,
    position     bigint,
    reason       text   NOT NULL,
    value        bytea,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    headers      jsonb,
    attempts     int    NOT NULL DEFAULT 1,
    retried_at   timestamptz,
    status       text   NOT NULL DEFAULT 'parked' CHECK (status IN ('parked', 'applied', 'discarded')),
    settled_at   timestamptz,
    settled_by   text,
    settled_why  text,
    contract_id  text
);
-- Databases made before dead letters could be retried or discarded: the same columns, in the
-- same order (a rebuild's switch copies the table with SELECT *).
ALTER TABLE {schema}.dead_letter
    ADD COLUMN IF NOT EXISTS headers     jsonb,
    ADD COLUMN IF NOT EXISTS attempts    int  NOT NULL DEFAULT 1,
    ADD COLUMN IF NOT EXISTS retried_at  timestamptz,
    ADD COLUMN IF NOT EXISTS status      text NOT NULL DEFAULT 'parked'
        CHECK (status IN ('parked', 'applied', 'discarded')),
    ADD COLUMN IF NOT EXISTS settled_at  timestamptz,
    ADD COLUMN IF NOT EXISTS settled_by  text,
    ADD COLUMN IF NOT EXISTS settled_why text,
    -- the contract a parked message is about (its key): an erasure drops the value of its
    -- contract's parked messages (docs/audit.md)
    ADD COLUMN IF NOT EXISTS contract_id text;
CREATE INDEX IF NOT EXISTS dead_letter_parked_idx ON {schema}.dead_letter (position) WHERE status = 'parked';
