-- How far the relay got: the last store position the broker acknowledged, how many messages
-- it has had acknowledged in all, and per partition {"p": [count, last position]}: a
-- partition without a message at count - 1 lost its history, and a runner past every
-- partition's last position has consumed everything up to `position`.
CREATE TABLE IF NOT EXISTS relay.position (
    topic      text PRIMARY KEY,
    position   bigint NOT NULL,
    published  bigint NOT NULL,
    partitions jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE relay.position ADD COLUMN IF NOT EXISTS partitions jsonb NOT NULL DEFAULT '{}';
-- The event the relay stays on because it cannot publish it (cannot encode it, too large,
-- refused, broker away), why, and since when; all NULL while nothing blocks it. The relay
-- never skips that event: GET /health answers 503 naming the relay while these are set.
ALTER TABLE relay.position ADD COLUMN IF NOT EXISTS blocked_position bigint;
ALTER TABLE relay.position ADD COLUMN IF NOT EXISTS blocked_reason text;
ALTER TABLE relay.position ADD COLUMN IF NOT EXISTS blocked_since timestamptz;
-- The relay's heartbeat, read by GET /health.
CREATE TABLE IF NOT EXISTS relay.heartbeat (
    topic   text PRIMARY KEY,
    beat_at timestamptz NOT NULL
);
