-- Reward campaigns: a deleted campaign keeps its row (ended_at set) as history,
-- so a campaign of the same name can start again as a new row; per-customer
-- award counters make the per-customer cap and `customers reached` exact.

ALTER TABLE reward_campaigns DROP CONSTRAINT reward_campaigns_namespace_name_key;
CREATE UNIQUE INDEX reward_campaigns_live_key ON reward_campaigns (namespace, name)
    WHERE ended_at IS NULL;
CREATE INDEX reward_campaigns_window_idx ON reward_campaigns (starts_at, ends_at)
    WHERE NOT paused;

ALTER TABLE reward_campaigns ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

-- Points each customer got from each campaign; written under the campaign
-- row's lock, so concurrent consumers never overspend either cap.
CREATE TABLE campaign_customer_awards (
    campaign_id  uuid NOT NULL REFERENCES reward_campaigns (id),
    customer_id  uuid NOT NULL,
    points       bigint NOT NULL DEFAULT 0 CHECK (points >= 0),
    orders       bigint NOT NULL DEFAULT 0,
    update_time  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, customer_id)
);
