-- The contract a stored ticket event belongs to, read from its JSON state, indexed with the
-- event's position so the audit history and the credit check find a contract's ticket
-- events without a scan, and the credit check only those after the position it has counted
-- up to (infra/postgres/usage.py).
-- IMMUTABLE is true here: the store writes its state as UTF-8 JSON and never rewrites it.
CREATE OR REPLACE FUNCTION {schema}.contract_of(state bytea) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT convert_from(state, 'UTF8')::jsonb ->> 'contract_id' $$;

CREATE INDEX IF NOT EXISTS ticketing_events_contract_position_idx
    ON {schema}.ticketing_events ({schema}.contract_of(state), notification_id)
    WHERE {schema}.contract_of(state) IS NOT NULL;

-- Replaced by the index above, which serves every read by contract as well.
DROP INDEX IF EXISTS {schema}.ticketing_events_contract_idx;
