-- The whole CustomerDB schema. Later migrations only add to it.

CREATE TABLE families (
    id              uuid PRIMARY KEY,
    display_name    text NOT NULL,
    external_id     text UNIQUE,
    wallet_pooled   boolean NOT NULL DEFAULT false,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    id                    uuid PRIMARY KEY,
    family_id             uuid NOT NULL REFERENCES families (id),
    -- Personal data: NULLed / emptied by DeleteCustomer.
    username              text,
    display_name          text,
    email                 text,
    role                  text NOT NULL DEFAULT 'adult'
                          CHECK (role IN ('owner', 'adult', 'child')),
    preferences           jsonb NOT NULL DEFAULT '{}'::jsonb,
    dietary_restrictions  text[] NOT NULL DEFAULT '{}',
    allergies             text[] NOT NULL DEFAULT '{}',
    external_id           text UNIQUE,
    deleted_at            timestamptz,
    -- Set when personal data has been purged after the grace period.
    purged_at             timestamptz,
    create_time           timestamptz NOT NULL DEFAULT now(),
    update_time           timestamptz NOT NULL DEFAULT now(),
    CHECK (deleted_at IS NOT NULL OR username IS NOT NULL)
);
CREATE UNIQUE INDEX customers_username_key ON customers (lower(username))
    WHERE username IS NOT NULL;
CREATE INDEX customers_family_idx ON customers (family_id, id);

CREATE TABLE favorites (
    id                 uuid PRIMARY KEY,
    customer_id        uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    drink_id           text NOT NULL,
    drink_name         text NOT NULL,
    customization      jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Canonical text of the customisation, so the same drink made the same way
    -- is one favorite.
    customization_key  text NOT NULL,
    position           integer NOT NULL,
    is_usual           boolean NOT NULL DEFAULT false,
    create_time        timestamptz NOT NULL DEFAULT now(),
    update_time        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, drink_id, customization_key)
);
CREATE UNIQUE INDEX favorites_one_usual ON favorites (customer_id) WHERE is_usual;
CREATE INDEX favorites_order_idx ON favorites (customer_id, position, id);

-- One row per order, whatever order its events arrived in.
CREATE TABLE order_history (
    order_id        text PRIMARY KEY,
    customer_id     uuid NOT NULL,
    family_id       uuid,
    placed_at       timestamptz,
    completed_at    timestamptz,
    cancelled_at    timestamptz,
    items           jsonb NOT NULL DEFAULT '[]'::jsonb,
    currency_code   text,
    total_minor     bigint NOT NULL DEFAULT 0,
    paid_minor      bigint NOT NULL DEFAULT 0,
    points_earned   bigint NOT NULL DEFAULT 0,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_customer_idx ON order_history (customer_id, placed_at DESC);
CREATE INDEX order_history_placed_idx ON order_history (placed_at);

CREATE TABLE order_stats (
    customer_id        uuid PRIMARY KEY,
    order_count        bigint NOT NULL DEFAULT 0,
    completed_count    bigint NOT NULL DEFAULT 0,
    cancelled_count    bigint NOT NULL DEFAULT 0,
    total_spent_minor  bigint NOT NULL DEFAULT 0,
    payment_count      bigint NOT NULL DEFAULT 0,
    currency_code      text,
    first_order_at     timestamptz,
    last_order_at      timestamptz,
    update_time        timestamptz NOT NULL DEFAULT now()
);

-- Per-drink counts: the customer's favorite drinks by what they order.
CREATE TABLE order_stats_drinks (
    customer_id  uuid NOT NULL,
    drink_id     text NOT NULL,
    drink_name   text NOT NULL,
    count        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, drink_id)
);

-- Per hour-of-week counts (0 = Monday 00:00 UTC .. 167): peak ordering times.
CREATE TABLE order_stats_hours (
    customer_id   uuid NOT NULL,
    hour_of_week  smallint NOT NULL CHECK (hour_of_week BETWEEN 0 AND 167),
    count         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, hour_of_week)
);

-- A loyalty account belongs to a customer, or to a family when its wallet is pooled.
CREATE TABLE loyalty_accounts (
    id               uuid PRIMARY KEY,
    customer_id      uuid UNIQUE REFERENCES customers (id),
    family_id        uuid UNIQUE REFERENCES families (id),
    -- Available points: always the sum of the account's ledger entries.
    balance          bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    lifetime_points  bigint NOT NULL DEFAULT 0,
    tier             text NOT NULL DEFAULT 'green'
                     CHECK (tier IN ('green', 'gold', 'reserve')),
    last_activity_at timestamptz,
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now(),
    CHECK ((customer_id IS NULL) <> (family_id IS NULL))
);

-- The points ledger: append-only (a trigger refuses UPDATE and DELETE).
CREATE TABLE loyalty_points (
    id               bigserial PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES loyalty_accounts (id),
    -- The member who earned or spent the points.
    member_id        uuid,
    kind             text NOT NULL
                     CHECK (kind IN ('earn', 'redeem', 'reverse', 'expire', 'adjust', 'transfer')),
    points           bigint NOT NULL CHECK (points <> 0),
    reason           text NOT NULL,
    source           text NOT NULL
                     CHECK (source IN ('order', 'reward', 'campaign', 'operator', 'system', 'family')),
    source_ref       text,
    campaign_id      uuid,
    idempotency_key  text NOT NULL UNIQUE,
    create_time      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX loyalty_points_account_idx ON loyalty_points (account_id, id DESC);
CREATE INDEX loyalty_points_member_idx ON loyalty_points (member_id, id DESC);

CREATE FUNCTION loyalty_points_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'loyalty_points is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER loyalty_points_append_only
    BEFORE UPDATE OR DELETE ON loyalty_points
    FOR EACH ROW EXECUTE FUNCTION loyalty_points_append_only();

CREATE TABLE rewards (
    id               uuid PRIMARY KEY,
    display_name     text NOT NULL,
    description      text NOT NULL DEFAULT '',
    points_cost      bigint NOT NULL CHECK (points_cost > 0),
    discount_kind    text NOT NULL CHECK (discount_kind IN ('amount_off', 'percent_off', 'free_drink')),
    -- amount_off: minor units; percent_off: 1..100; free_drink: unused.
    discount_value   bigint NOT NULL DEFAULT 0,
    currency_code    text,
    free_drink_id    text,
    min_tier         text CHECK (min_tier IN ('green', 'gold', 'reserve')),
    available_from   timestamptz,
    available_until  timestamptz,
    active           boolean NOT NULL DEFAULT true,
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now()
);

-- A redemption is a hold against an order: its points leave the balance (a
-- `redeem` ledger entry) when held, and come back (`reverse`) when released.
CREATE TABLE redemptions (
    id               uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES loyalty_accounts (id),
    customer_id      uuid NOT NULL REFERENCES customers (id),
    reward_id        uuid NOT NULL REFERENCES rewards (id),
    order_id         text NOT NULL,
    points           bigint NOT NULL CHECK (points > 0),
    state            text NOT NULL
                     CHECK (state IN ('pending_approval', 'held', 'captured', 'released',
                                      'refunded', 'declined', 'expired')),
    idempotency_key  text NOT NULL UNIQUE,
    -- Digest of the request, to reject a reused key with a different request.
    request_hash     text NOT NULL,
    hold_expires_at  timestamptz,
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX redemptions_order_idx ON redemptions (order_id);
CREATE INDEX redemptions_hold_idx ON redemptions (hold_expires_at) WHERE state = 'held';

-- RewardCampaign resources, as the operator reconciled them.
CREATE TABLE reward_campaigns (
    id                   uuid PRIMARY KEY,
    namespace            text NOT NULL,
    name                 text NOT NULL,
    generation           bigint NOT NULL DEFAULT 1,
    spec                 jsonb NOT NULL,
    display_name         text NOT NULL DEFAULT '',
    starts_at            timestamptz NOT NULL,
    ends_at              timestamptz NOT NULL,
    paused               boolean NOT NULL DEFAULT false,
    budget_total         bigint,
    budget_per_customer  bigint,
    points_awarded       bigint NOT NULL DEFAULT 0,
    customers_reached    bigint NOT NULL DEFAULT 0,
    ended_at             timestamptz,
    create_time          timestamptz NOT NULL DEFAULT now(),
    update_time          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace, name),
    CHECK (ends_at > starts_at)
);

-- The consumer's inbox: one row per applied event, written in the same
-- transaction as the event's effect.
CREATE TABLE processed_events (
    event_id      text PRIMARY KEY,
    topic         text NOT NULL,
    partition     integer NOT NULL,
    "offset"      bigint NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_time_idx ON processed_events (processed_at);

-- Idempotency records for unary calls with effects (create, update, delete...).
CREATE TABLE idempotency_keys (
    key            text PRIMARY KEY,
    method         text NOT NULL,
    request_hash   text NOT NULL,
    response       bytea NOT NULL,
    create_time    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_time_idx ON idempotency_keys (create_time);
