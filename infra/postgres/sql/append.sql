-- One group commit's append as a single statement, so a batch costs one round trip (in
-- autocommit the statement is its own transaction): the events table is locked for the
-- transaction, as the library does, so ids are handed out in commit order and readers never
-- pass a gap that fills later; the events go in, each with the batch's commit time and its
-- link in its contract's hash chain (docs/audit.md); and each keyed command's answer is kept
-- with the position of its last event (`last`, 1-based into the batch), in the same transaction.
-- The events come as arrays, one per column (cheaper to send than an array of rows);
-- `contracts` names each event's contract (its own id for a contract's event).
-- A batch's commands are checked together: when one of them read a state that has changed, the
-- batch fails and the committer appends its commands one at a time (infra/postgres/group_commit.py).
-- Answers the new notification ids in the order the events were given, and tells an idle
-- relay that there is news (NOTIFY ticketing_appended, payload: the schema).
DROP FUNCTION IF EXISTS {schema}.ticketing_append(uuid[], bigint[], text[], bytea[], jsonb, text);
DROP FUNCTION IF EXISTS {schema}.ticketing_append(uuid[], bigint[], text[], bytea[], uuid[], jsonb, text);
CREATE OR REPLACE FUNCTION {schema}.ticketing_append(
    ids uuid[], versions bigint[], topics text[], states bytea[], contracts uuid[],
    read_ids uuid[], read_versions bigint[], claims jsonb, lock_timeout text
) RETURNS bigint[]
LANGUAGE plpgsql
AS $$
DECLARE
    positions bigint[];
    committed timestamptz := clock_timestamp();
    latest timestamptz;
    stamp text;
    heads jsonb;
    hashes bytea[] := '{}';
    link bytea;
    contract text;
BEGIN
    PERFORM set_config('lock_timeout', lock_timeout, true);
    LOCK TABLE {schema}.ticketing_events IN EXCLUSIVE MODE;
    -- What the commands read without writing (`read_ids` at `read_versions`) must still be the
    -- latest: a decision on a state another writer has changed since is not recorded.
    IF EXISTS (SELECT 1 FROM {schema}.ticketing_events t
               JOIN unnest(read_ids, read_versions) AS r(id, version)
                 ON t.originator_id = r.id AND t.originator_version > r.version) THEN
        RAISE EXCEPTION 'a command decided on a state that has changed since' USING ERRCODE = 'serialization_failure';
    END IF;
    -- Commit time follows the store's order, whatever the server's clock did meanwhile.
    SELECT committed_at INTO latest FROM {schema}.ticketing_events ORDER BY notification_id DESC LIMIT 1;
    IF latest IS NOT NULL AND latest > committed THEN
        committed := latest;
    END IF;
    stamp := to_char(committed AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    SELECT coalesce(jsonb_object_agg(h.contract_id::text, encode(h.head, 'hex')), '{}'::jsonb) INTO heads
    FROM {schema}.chain_heads h WHERE h.contract_id = ANY (contracts);
    FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
        contract := contracts[i]::text;
        link := sha256(
            coalesce(decode(heads ->> contract, 'hex'), '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
            || convert_to(format(E'ticketing-chain-v1\n%s\n%s\n%s\n%s\n%s\n', stamp, contract, ids[i], versions[i], topics[i]), 'UTF8')
            || states[i]);
        heads := jsonb_set(heads, ARRAY[contract], to_jsonb(encode(link, 'hex')));
        hashes := hashes || link;
    END LOOP;
    -- Under the lock the sequence hands the rows their ids in insertion order.
    WITH inserted AS (
        INSERT INTO {schema}.ticketing_events (originator_id, originator_version, topic, state, committed_at, chain_hash)
        SELECT e.i, e.v, e.t, e.s, committed, e.h FROM unnest(ids, versions, topics, states, hashes) AS e(i, v, t, s, h)
        RETURNING notification_id
    )
    SELECT array_agg(notification_id ORDER BY notification_id) INTO positions FROM inserted;
    INSERT INTO {schema}.chain_heads (contract_id, head, events, position)
    SELECT c.contract, decode(heads ->> c.contract::text, 'hex'), count(*), max(positions[c.n])
    FROM unnest(contracts) WITH ORDINALITY AS c(contract, n)
    GROUP BY c.contract
    ON CONFLICT (contract_id) DO UPDATE
        SET head = EXCLUDED.head, events = {schema}.chain_heads.events + EXCLUDED.events, position = EXCLUDED.position;
    IF jsonb_array_length(claims) > 0 THEN
        INSERT INTO {schema}.idempotency (scope, key, request_hash, status, answer)
        SELECT d.scope, d.key, decode(d.hash, 'hex'), d.status,
               d.answer || jsonb_build_object('position', positions[d.last])
        FROM jsonb_to_recordset(claims) AS d(scope text, key text, hash text, status int, answer jsonb, last int);
    END IF;
    -- Rings the relay's doorbell (infra/postgres/doorbell.py), delivered when this commits.
    PERFORM pg_notify('ticketing_appended', '{schema}');
    RETURN positions;
END
$$;
