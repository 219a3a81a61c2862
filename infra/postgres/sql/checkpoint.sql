-- A projection's consumer position, written in the same transaction as its read-model rows.
CREATE TABLE IF NOT EXISTS {schema}.checkpoint (
    topic        text   NOT NULL,
    partition    int    NOT NULL,
    kafka_offset bigint NOT NULL,
    position     bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
-- The runner's heartbeat, read by GET /health.
CREATE TABLE IF NOT EXISTS {schema}.heartbeat (
    runner     text PRIMARY KEY,
    beat_at    timestamptz NOT NULL
);
-- Everything up to this store position has been consumed (applied or ignored) on every
-- partition: what `?wait_for=` compares against. It only ever grows.
CREATE TABLE IF NOT EXISTS {schema}.watermark (
    topic      text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- How many events the runner applied and ignored, counted in the transaction of each batch
-- (GET /metrics: ticketing_projection_applied_total, ..._ignored_total).
CREATE TABLE IF NOT EXISTS {schema}.tally (
    topic   text   PRIMARY KEY,
    applied bigint NOT NULL DEFAULT 0,
    ignored bigint NOT NULL DEFAULT 0
);
-- What a rebuild built these tables with (one row; none: tables set up, not rebuilt): the
-- rules version of its code, where it read from, the store position its fill has applied up
-- to and the one it heads for (GET /metrics shows both while a rebuild is prepared), and when
-- the tables were switched in. A runner whose code has other rules refuses to write into them.
CREATE TABLE IF NOT EXISTS {schema}.built (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    rules_version text NOT NULL,
    source        text NOT NULL,
    position      bigint NOT NULL,
    target        bigint NOT NULL,
    prepared_at   timestamptz NOT NULL DEFAULT now(),
    switched_at   timestamptz
);
-- Why the runner refuses to write (a rules version that differs from the tables'), or null.
ALTER TABLE {schema}.heartbeat ADD COLUMN IF NOT EXISTS refused text;
