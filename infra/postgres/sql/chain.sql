-- Commit time and tamper evidence (docs/audit.md): every stored event carries the instant its
-- append committed (taken under the events table's lock, so it never goes back as positions
-- go up) and its link in its contract's hash chain; `chain_heads` keeps each contract's head.
ALTER TABLE {schema}.ticketing_events
    ADD COLUMN IF NOT EXISTS committed_at timestamptz,
    ADD COLUMN IF NOT EXISTS chain_hash bytea;

CREATE TABLE IF NOT EXISTS {schema}.chain_heads (
    contract_id uuid        PRIMARY KEY,
    head        bytea       NOT NULL,
    events      bigint      NOT NULL,
    position    bigint      NOT NULL
);
