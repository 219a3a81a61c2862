-- Availability: planned maintenance windows a contract announced (downtime inside them is
-- excluded and reported apart), keyed by the store position of the announcement.
CREATE TABLE IF NOT EXISTS {schema}.availability_maintenance (
    contract_id text   NOT NULL,
    position    bigint NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text,
    PRIMARY KEY (contract_id, position)
);
