-- The access tokens as they stand (docs/design.md, Access): one row per token, written in the
-- same transaction as the token's event (infra/postgres/tokens.py), which also notifies the
-- API processes that keep recently presented rows (infra/postgres/token_cache.py). Only a
-- SHA-256 hash of each secret is kept (secrets are 256 random bits).
CREATE TABLE IF NOT EXISTS {schema}.tokens (
    token_id    uuid        PRIMARY KEY,
    secret_hash bytea       NOT NULL,
    role        text        NOT NULL,
    contracts   uuid[]      NOT NULL DEFAULT '{}',
    name        text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    rotated_at  timestamptz,
    revoked_at  timestamptz
);
-- The named-user count: a contract's active customer tokens.
CREATE INDEX IF NOT EXISTS tokens_contracts_idx ON {schema}.tokens USING gin (contracts)
    WHERE revoked_at IS NULL AND role = 'customer';

-- The Idempotency-Keys token changes used (per caller): a repeat is refused, never replayed,
-- because a token's answer holds its secret and no secret is kept.
CREATE TABLE IF NOT EXISTS {schema}.used_keys (
    scope   text        NOT NULL,
    key     text        NOT NULL,
    used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
