-- Notices a projection decided to publish (a breach, a low balance...), written in the same
-- transaction as the read-model rows; the runner publishes them after commit and marks them.
CREATE TABLE IF NOT EXISTS {schema}.outbox (
    id           bigserial PRIMARY KEY,
    notice_id    text NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          text NOT NULL,
    value        bytea NOT NULL,
    headers      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON {schema}.outbox (id) WHERE published_at IS NULL;
