-- Crypto-shredding (docs/audit.md): each contract's personal fields are sealed (AES-GCM) under
-- its own key, kept here and nowhere else. Erasing the contract destroys the key (`key` NULL,
-- `erased_at` set): from then on its sealed fields cannot be opened by anyone. The stored
-- events keep their sealed bytes, so the hash chain still verifies. A contract without a row
-- was signed before sealing began: its fields were stored in clear (docs/audit.md says so).
CREATE TABLE IF NOT EXISTS {schema}.contract_keys (
    contract_id uuid        PRIMARY KEY,
    key         bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);

-- Whether a contract's personal data is erased: the read models' routes show its personal
-- columns as NULL from the moment its key is destroyed, before the projections blank them.
CREATE OR REPLACE FUNCTION {schema}.erased(contract text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM {schema}.contract_keys WHERE contract_id = contract::uuid AND erased_at IS NOT NULL)
$$;
