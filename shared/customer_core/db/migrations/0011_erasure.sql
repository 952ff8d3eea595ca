-- Erasure reaches every copy of a customer's personal data (docs/security.md).

-- Whose personal data a stored idempotent response may hold: erasing that
-- customer (or the last live member of that family) rewrites or clears the
-- response, keeping the key, method and request digest so a late retry is
-- still recognised. `erased_at` says when that happened.
ALTER TABLE idempotency_keys ADD COLUMN customer_id uuid;
ALTER TABLE idempotency_keys ADD COLUMN family_id uuid;
ALTER TABLE idempotency_keys ADD COLUMN erased_at timestamptz;
ALTER TABLE idempotency_keys ALTER COLUMN response DROP NOT NULL;
CREATE INDEX idempotency_keys_customer_idx ON idempotency_keys (customer_id)
    WHERE customer_id IS NOT NULL;
CREATE INDEX idempotency_keys_family_idx ON idempotency_keys (family_id)
    WHERE family_id IS NOT NULL;

-- Responses stored before this migration, by what their JSON names.
UPDATE idempotency_keys
SET customer_id = (convert_from(response, 'UTF8')::jsonb ->> 'id')::uuid
WHERE method IN ('CreateCustomer', 'UpdateCustomer') AND response <> '';
UPDATE idempotency_keys
SET customer_id = (convert_from(response, 'UTF8')::jsonb ->> 'customer_id')::uuid
WHERE method IN ('AddFavorite', 'UpdateFavorite', 'SetUsualOrder') AND response <> '';
UPDATE idempotency_keys
SET family_id = (convert_from(response, 'UTF8')::jsonb ->> 'id')::uuid
WHERE method = 'CreateFamily' AND response <> '';

-- The ledger stays append-only, with one exception: erasure may replace an
-- entry's free-text reason (an operator's or a member's words), and nothing
-- else of it, inside a transaction that set customer.erasure = 'on'. Amounts,
-- accounts and keys never change, so every balance still equals its entries.
CREATE OR REPLACE FUNCTION loyalty_points_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('customer.erasure', true) = 'on'
       AND to_jsonb(NEW) - 'reason' = to_jsonb(OLD) - 'reason' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'loyalty_points is append-only (% refused)', TG_OP;
END
$$;
