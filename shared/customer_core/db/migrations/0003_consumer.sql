-- The consumer: payments already counted per order, so a payment re-sent under
-- a new event id (a producer retry) is not counted twice, and why an order was
-- cancelled.
ALTER TABLE order_history ADD COLUMN payment_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE order_history ADD COLUMN cancel_reason text;

-- What an order earned, found again when it is cancelled.
CREATE INDEX loyalty_points_source_ref_idx ON loyalty_points (source_ref)
    WHERE source_ref IS NOT NULL;
