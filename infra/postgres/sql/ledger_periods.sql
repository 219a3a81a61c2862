-- One row per contract and period: running totals, and the low-balance and exhaustion
-- crossings so far (a notice goes out once per crossing), and the store position of the last
-- event applied to it.
CREATE TABLE IF NOT EXISTS {schema}.periods (
    contract_id         text NOT NULL,
    label               text NOT NULL,
    starts_at           timestamptz NOT NULL,
    granted             bigint,
    used                bigint NOT NULL,
    minutes             bigint NOT NULL,
    entries             int NOT NULL,
    low                 boolean NOT NULL,
    exhausted           boolean NOT NULL,
    low_crossings       int NOT NULL,
    exhausted_crossings int NOT NULL,
    position            bigint NOT NULL,
    PRIMARY KEY (contract_id, label)
);
