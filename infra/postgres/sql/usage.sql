-- The credit check's saved counts (infra/postgres/usage.py): per contract, how many time entries
-- of each (kind, minutes) its tickets held up to a store position, as [kind, minutes, count]
-- triples, so that a fresh process reads these and only the entries stored after `position`,
-- not the whole history. `version` is the time entry class's version (its `class_version`)
-- the entries were decoded at: counts decoded by an older or newer upcasting are not used.
CREATE TABLE IF NOT EXISTS {schema}.usage_counts (
    contract_id text   NOT NULL,
    version     int    NOT NULL,
    position    bigint NOT NULL,
    counts      jsonb  NOT NULL,
    PRIMARY KEY (contract_id, version)
);
