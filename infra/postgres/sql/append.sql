-- One group commit's append as a single statement, so a batch costs one round trip (in
-- autocommit the statement is its own transaction): the events table is locked for the
-- transaction, as the library does, so ids are handed out in commit order and readers never
-- pass a gap that fills later; the events go in; and each keyed command's answer is kept with
-- the position of its last event (`last`, 1-based into the batch), in the same transaction.
-- The events come as four arrays, one per column (cheaper to send than an array of rows).
-- Answers the new notification ids in the order the events were given.
CREATE OR REPLACE FUNCTION {schema}.ticketing_append(
    ids uuid[], versions bigint[], topics text[], states bytea[], claims jsonb, lock_timeout text
) RETURNS bigint[]
LANGUAGE plpgsql
AS $$
DECLARE
    positions bigint[];
BEGIN
    PERFORM set_config('lock_timeout', lock_timeout, true);
    LOCK TABLE {schema}.ticketing_events IN EXCLUSIVE MODE;
    -- Under the lock the sequence hands the rows their ids in insertion order.
    WITH inserted AS (
        INSERT INTO {schema}.ticketing_events (originator_id, originator_version, topic, state)
        SELECT * FROM unnest(ids, versions, topics, states)
        RETURNING notification_id
    )
    SELECT array_agg(notification_id ORDER BY notification_id) INTO positions FROM inserted;
    IF jsonb_array_length(claims) > 0 THEN
        INSERT INTO {schema}.idempotency (scope, key, request_hash, status, answer)
        SELECT d.scope, d.key, decode(d.hash, 'hex'), d.status,
               d.answer || jsonb_build_object('position', positions[d.last])
        FROM jsonb_to_recordset(claims) AS d(scope text, key text, hash text, status int, answer jsonb, last int);
    END IF;
    RETURN positions;
END
$$;
