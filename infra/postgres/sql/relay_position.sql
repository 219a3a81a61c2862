-- How far the relay got: the last store position the broker acknowledged, and how many
-- messages it has had acknowledged in all (a topic holding fewer has lost its history).
CREATE TABLE IF NOT EXISTS relay.position (
    topic      text PRIMARY KEY,
    position   bigint NOT NULL,
    published  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- The relay's heartbeat, read by GET /health.
CREATE TABLE IF NOT EXISTS relay.heartbeat (
    topic   text PRIMARY KEY,
    beat_at timestamptz NOT NULL
);
