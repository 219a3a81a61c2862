-- Availability: the outage segments derived from each system-down ticket's facts; `ends_at`
-- is null while the outage is open (it then counts up to the query's "now").
CREATE TABLE IF NOT EXISTS {schema}.availability_outages (
    ticket_id   text NOT NULL,
    seq         int  NOT NULL,
    contract_id text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    PRIMARY KEY (ticket_id, seq)
);
CREATE INDEX IF NOT EXISTS availability_outages_contract_idx
    ON {schema}.availability_outages (contract_id, starts_at);
CREATE INDEX IF NOT EXISTS availability_outages_open_idx
    ON {schema}.availability_outages (contract_id) WHERE ends_at IS NULL;
