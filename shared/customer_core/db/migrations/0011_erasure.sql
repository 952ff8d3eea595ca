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

-- What arrives about a customer after the erasure keeps none of its free text:
-- a late order.cancelled's reason, a reversal's or a decision's reason. Only
-- rows carrying such text pay the look-up (the WHEN clauses).
CREATE FUNCTION customer_is_deleted(cid uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM customers WHERE id = cid AND deleted_at IS NOT NULL)
$$;

CREATE FUNCTION order_history_no_erased_reason() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF customer_is_deleted(NEW.customer_id) THEN
        NEW.cancel_reason := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER order_history_no_erased_reason
    BEFORE INSERT OR UPDATE OF cancel_reason ON order_history
    FOR EACH ROW WHEN (NEW.cancel_reason IS NOT NULL)
    EXECUTE FUNCTION order_history_no_erased_reason();

-- Only operator and reward entries carry a caller's words; the consumer's
-- (orders, campaigns), the jobs' and imports' (system) and transfers do not.
CREATE FUNCTION loyalty_points_no_erased_reason() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF customer_is_deleted(NEW.member_id) THEN
        NEW.reason := '(erased)';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER loyalty_points_no_erased_reason
    BEFORE INSERT ON loyalty_points
    FOR EACH ROW WHEN (NEW.member_id IS NOT NULL AND NEW.source IN ('operator', 'reward'))
    EXECUTE FUNCTION loyalty_points_no_erased_reason();

CREATE FUNCTION redemption_approvals_no_erased_reason() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF customer_is_deleted(NEW.requested_by) OR customer_is_deleted(NEW.decided_by) THEN
        NEW.reason := '';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER redemption_approvals_no_erased_reason
    BEFORE INSERT OR UPDATE OF reason ON redemption_approvals
    FOR EACH ROW WHEN (NEW.reason <> '')
    EXECUTE FUNCTION redemption_approvals_no_erased_reason();
