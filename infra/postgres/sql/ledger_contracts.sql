-- The ledger's books: per contract, what its signed terms tell the ledger (scheme, threshold,
-- grant, charge rules: a few keys, not the whole terms) and the periods recorded so far;
-- `renews_at` is when an active hour bank is due to renew (read by the renewal pass);
-- `position` is the store position of the last event applied to it.
CREATE TABLE IF NOT EXISTS {schema}.contracts (
    contract_id text PRIMARY KEY,
    plan        text NOT NULL,
    scheme      text NOT NULL,
    time_zone   text NOT NULL,
    starts_on   text NOT NULL,
    status      text NOT NULL,
    periods     text[] NOT NULL,
    settings    jsonb NOT NULL,
    renews_at   timestamptz,
    position    bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS contracts_renews_idx ON {schema}.contracts (renews_at)
    WHERE renews_at IS NOT NULL;
