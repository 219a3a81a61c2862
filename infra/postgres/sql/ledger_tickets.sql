-- What each ticket has cost so far, summed from its entries (read when it is resolved), and
-- the store position of the last of its events applied (a time entry or a resolution).
CREATE TABLE IF NOT EXISTS {schema}.tickets (
    ticket_id   text PRIMARY KEY,
    contract_id text NOT NULL,
    minutes     bigint NOT NULL,
    charge      bigint NOT NULL,
    overage     bigint NOT NULL,
    position    bigint NOT NULL
);
