-- The SLA read model's contracts: the terms, time zone and extra closed dates each contract
-- signed, from which its calendars and targets are rebuilt (the catalog may change, they do not),
-- and the store position of that signing (a redelivered one is ignored).
CREATE TABLE IF NOT EXISTS {schema}.sla_contracts (
    contract_id text PRIMARY KEY,
    plan_id     text NOT NULL,
    terms       jsonb NOT NULL,
    time_zone   text NOT NULL,
    holidays    text[] NOT NULL,
    position    bigint NOT NULL
);
