-- Idempotency keys (DESIGN section 6): one row per caller scope and key. A command claims
-- its key before it runs (status NULL, owned by the API process that runs it, which holds
-- the advisory lock named by `owner` while it lives); its answer is kept in the same
-- transaction as its events. Only a hash of the request is kept.
CREATE TABLE IF NOT EXISTS {schema}.idempotency (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    attempt      uuid        NOT NULL,
    owner        text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    status       int,
    answer       jsonb,
    completed_at timestamptz,
    PRIMARY KEY (scope, key)
);
