-- Idempotency keys (docs/design.md, Idempotency): per caller scope and key, the answer a command got,
-- inserted in the same transaction as its events (a second insert of a key fails, and with
-- it that command's append). Only a hash of the request is kept.
CREATE TABLE IF NOT EXISTS {schema}.idempotency (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       int         NOT NULL,
    answer       jsonb       NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
