-- Availability: the months whose error budget was noticed as spent (each noticed once; the
-- notice itself goes through the outbox under the same notice_id).
CREATE TABLE IF NOT EXISTS {schema}.availability_notices (
    contract_id  text NOT NULL,
    month        text NOT NULL,
    notice_id    text NOT NULL UNIQUE,
    exhausted_at timestamptz NOT NULL,
    decided_at   timestamptz NOT NULL,
    PRIMARY KEY (contract_id, month)
);
