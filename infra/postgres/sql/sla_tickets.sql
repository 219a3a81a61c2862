-- The SLA read model's tickets: the facts folded from each ticket's events (what the clocks
-- are evaluated from, at read time, with the real now) and the deadlines the projection
-- derived from them: per clock the due instant, the stop, whether it is still on (running or
-- paused), the target, the alarm (when the projection's tick wants to look at the clock; null:
-- never), and the due instant whose breach was last noticed (kept across re-derivations);
-- `position` is the store position of the last event folded into the facts.
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
    resolution_noticed        timestamptz,
    response_alarm_at         timestamptz,
    resolution_alarm_at       timestamptz
);
-- A table made before the alarms existed gets their columns; a rebuild fills them (the rules
-- that set them are the projection's, so they are replayed, not migrated).
ALTER TABLE {schema}.sla_tickets ADD COLUMN IF NOT EXISTS response_alarm_at timestamptz;
ALTER TABLE {schema}.sla_tickets ADD COLUMN IF NOT EXISTS resolution_alarm_at timestamptz;
DROP INDEX IF EXISTS {schema}.sla_tickets_response_due_idx;
DROP INDEX IF EXISTS {schema}.sla_tickets_resolution_due_idx;
CREATE INDEX IF NOT EXISTS sla_tickets_month_idx ON {schema}.sla_tickets (contract_id, opened_at);
-- The tick's question: the clocks whose alarm is set and not noticed for it, by alarm.
CREATE INDEX IF NOT EXISTS sla_tickets_response_alarm_idx ON {schema}.sla_tickets (response_alarm_at)
    WHERE response_alarm_at IS NOT NULL AND response_noticed IS DISTINCT FROM response_alarm_at;
CREATE INDEX IF NOT EXISTS sla_tickets_resolution_alarm_idx ON {schema}.sla_tickets (resolution_alarm_at)
    WHERE resolution_alarm_at IS NOT NULL AND resolution_noticed IS DISTINCT FROM resolution_alarm_at;
