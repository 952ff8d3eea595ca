-- What a cancelled order's reversal could not take back because the family's
-- points were held for redemptions at the time: taken when those points come
-- back (a hold released, expired or refunded), so a hold can't shelter them.
-- A row stays (at 0) once paid: it marks the earning as reversed.
CREATE TABLE points_owed (
    idempotency_key  text PRIMARY KEY,  -- the earn entry's
    member_id        uuid NOT NULL,
    order_id         text NOT NULL,
    source           text NOT NULL,
    campaign_id      uuid,
    points           bigint NOT NULL CHECK (points >= 0),
    create_time      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX points_owed_member_idx ON points_owed (member_id) WHERE points > 0;
