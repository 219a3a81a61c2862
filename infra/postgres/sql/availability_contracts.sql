-- Availability: each contract's time zone (its months) and availability target (null: the
-- plan promises none); `dirty_since` is the earliest instant from which its outages or
-- maintenance changed since the projection last checked its error budgets (null: none);
-- `position` is the store position of the last event applied to it (signing, maintenance).
CREATE TABLE IF NOT EXISTS {schema}.availability_contracts (
    contract_id text PRIMARY KEY,
    time_zone   text NOT NULL,
    target_pct  double precision,
    dirty_since timestamptz,
    position    bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS availability_contracts_dirty_idx
    ON {schema}.availability_contracts (contract_id) WHERE dirty_since IS NOT NULL;
