-- What each ticket has cost so far, summed from its entries (read when it is resolved).
CREATE TABLE IF NOT EXISTS {schema}.tickets (
    ticket_id   text PRIMARY KEY,
    contract_id text NOT NULL,
    minutes     bigint NOT NULL,
    charge      bigint NOT NULL,
    overage     bigint NOT NULL
);
