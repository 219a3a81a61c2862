-- Availability: what the outage rules need to know of every ticket (a ticket classified into
-- system-down later becomes an outage from `since`): its category's verdict, whether it was
-- cancelled, and its restorations, resolutions and reopenings in order, as [[kind, instant]];
-- `position` is the store position of the last event applied to it.
CREATE TABLE IF NOT EXISTS {schema}.availability_tickets (
    ticket_id   text PRIMARY KEY,
    contract_id text NOT NULL,
    since       timestamptz NOT NULL,
    down        boolean NOT NULL,
    cancelled   boolean NOT NULL DEFAULT false,
    history     jsonb NOT NULL DEFAULT '[]',
    position    bigint NOT NULL
);
