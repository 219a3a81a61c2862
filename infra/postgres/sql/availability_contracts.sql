-- Availability: each contract's time zone (its months) and availability target (null: the
-- plan promises none); `dirty` marks a contract whose outages or maintenance changed since
-- the projection last checked its error budgets.
CREATE TABLE IF NOT EXISTS {schema}.availability_contracts (
    contract_id text PRIMARY KEY,
    time_zone   text NOT NULL,
    target_pct  double precision,
    dirty       boolean NOT NULL DEFAULT false
);
