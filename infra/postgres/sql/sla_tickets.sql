-- The SLA read model's tickets: the facts folded from each ticket's events (what the clocks
-- are evaluated from, at read time, with the real now) and the deadlines derived from them:
-- per clock the due instant, the stop, whether it is still on (running or paused), the target,
-- and the due instant whose breach was last noticed (kept across re-derivations); `position`
-- is the store position of the last event folded into the facts.
CREATE TABLE IF NOT EXISTS {schema}.sla_tickets (
    ticket_id                 text PRIMARY KEY,
    contract_id               text NOT NULL,
    opened_at                 timestamptz NOT NULL,
    position                  bigint NOT NULL,
    facts                     jsonb NOT NULL,
    priority                  text,
    category                  text,
    grp                       text,
    response_due_at           timestamptz,
    response_stopped_at       timestamptz,
    response_on               boolean NOT NULL DEFAULT false,
    response_target           text,
    response_target_minutes   double precision,
    response_noticed          timestamptz,
    resolution_due_at         timestamptz,
    resolution_stopped_at     timestamptz,
    resolution_on             boolean NOT NULL DEFAULT false,
    resolution_target         text,
    resolution_target_minutes double precision,
    resolution_noticed        timestamptz
);
CREATE INDEX IF NOT EXISTS sla_tickets_month_idx ON {schema}.sla_tickets (contract_id, opened_at);
-- The clocks the tick looks at: on, and not yet noticed for their current due instant.
CREATE INDEX IF NOT EXISTS sla_tickets_response_due_idx ON {schema}.sla_tickets (response_due_at)
    WHERE response_on AND response_noticed IS DISTINCT FROM response_due_at;
CREATE INDEX IF NOT EXISTS sla_tickets_resolution_due_idx ON {schema}.sla_tickets (resolution_due_at)
    WHERE resolution_on AND resolution_noticed IS DISTINCT FROM resolution_due_at;
