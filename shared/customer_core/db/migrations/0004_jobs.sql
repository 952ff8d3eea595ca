-- Background jobs: run records, watermarks, roll-ups, notifications, archive.

-- One row per job run (or per scheduled tick when the scheduler sent it).
CREATE TABLE job_runs (
    id           bigserial PRIMARY KEY,
    job          text NOT NULL,
    -- The scheduled minute that caused the run; NULL for `jobs run NAME`.
    tick         text,
    runner       text NOT NULL,
    attempts     integer NOT NULL DEFAULT 1,
    outcome      text NOT NULL DEFAULT 'running'
                 CHECK (outcome IN ('running', 'succeeded', 'failed')),
    rows         bigint NOT NULL DEFAULT 0,
    detail       text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz
);
-- A tick runs once: a second scheduler or a redelivery finds it done.
CREATE UNIQUE INDEX job_runs_tick_key ON job_runs (job, tick) WHERE tick IS NOT NULL;
CREATE INDEX job_runs_job_idx ON job_runs (job, id DESC);

-- How far an incremental job has read (roll-ups: order_history.update_time).
CREATE TABLE job_watermarks (
    job          text PRIMARY KEY,
    mark         timestamptz NOT NULL,
    update_time  timestamptz NOT NULL DEFAULT now()
);

-- Order history older than the retention period, moved here by the clean-up
-- job; roll-ups read both tables so aggregates never change.
CREATE TABLE order_history_archive (
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
    create_time     timestamptz NOT NULL,
    update_time     timestamptz NOT NULL,
    payment_ids     text[] NOT NULL DEFAULT '{}',
    cancel_reason   text,
    archived_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_archive_customer_idx
    ON order_history_archive (customer_id, placed_at DESC);
CREATE INDEX order_history_archive_family_idx ON order_history_archive (family_id, placed_at);
CREATE INDEX order_history_archive_placed_idx ON order_history_archive (placed_at);
CREATE INDEX order_history_update_idx ON order_history (update_time);
CREATE INDEX order_history_family_idx ON order_history (family_id, placed_at);

-- Live history first; an archived row only when no live row has its order id
-- (a very late event may recreate a live row for an archived order).
CREATE VIEW order_history_all AS
    SELECT order_id, customer_id, family_id, placed_at, completed_at, cancelled_at,
           total_minor, paid_minor, points_earned, create_time
    FROM order_history
    UNION ALL
    SELECT a.order_id, a.customer_id, a.family_id, a.placed_at, a.completed_at,
           a.cancelled_at, a.total_minor, a.paid_minor, a.points_earned, a.create_time
    FROM order_history_archive a
    WHERE NOT EXISTS (SELECT 1 FROM order_history h WHERE h.order_id = a.order_id);

-- Roll-ups. `period` is the UTC day, or the Monday of the ISO week.
CREATE TABLE customer_stats_daily (
    customer_id      uuid NOT NULL,
    period           date NOT NULL,
    orders           bigint NOT NULL,
    completed        bigint NOT NULL,
    cancelled        bigint NOT NULL,
    spent_minor      bigint NOT NULL,
    points_earned    bigint NOT NULL,
    PRIMARY KEY (customer_id, period)
);
CREATE TABLE customer_stats_weekly (LIKE customer_stats_daily INCLUDING ALL);
CREATE TABLE family_stats_daily (
    family_id        uuid NOT NULL,
    period           date NOT NULL,
    orders           bigint NOT NULL,
    completed        bigint NOT NULL,
    cancelled        bigint NOT NULL,
    spent_minor      bigint NOT NULL,
    points_earned    bigint NOT NULL,
    PRIMARY KEY (family_id, period)
);
CREATE TABLE family_stats_weekly (LIKE family_stats_daily INCLUDING ALL);

-- Platform orders per UTC day and hour, the source of the peak-hours table.
CREATE TABLE platform_hourly_orders (
    day     date NOT NULL,
    hour    smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    isodow  smallint NOT NULL CHECK (isodow BETWEEN 1 AND 7),
    orders  bigint NOT NULL,
    PRIMARY KEY (day, hour)
);
-- Platform-wide orders by hour of week (0 = Monday 00:00 UTC .. 167).
CREATE TABLE platform_peak_hours (
    hour_of_week  smallint PRIMARY KEY CHECK (hour_of_week BETWEEN 0 AND 167),
    orders        bigint NOT NULL,
    update_time   timestamptz NOT NULL DEFAULT now()
);

-- Notifications, recorded once per customer, reason and subject, then
-- published to Kafka (published_at set after the broker acknowledged).
CREATE TABLE customer_notifications (
    id            uuid PRIMARY KEY,
    customer_id   uuid NOT NULL,
    reason        text NOT NULL
                  CHECK (reason IN ('reward_available', 'tier_reached', 'points_expiring')),
    subject       text NOT NULL,
    points        bigint NOT NULL DEFAULT 0,
    expire_time   timestamptz,
    create_time   timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    UNIQUE (customer_id, reason, subject)
);
CREATE INDEX customer_notifications_unpublished_idx
    ON customer_notifications (create_time) WHERE published_at IS NULL;

-- Expiry and warnings scan inactive accounts with points.
CREATE INDEX loyalty_accounts_activity_idx
    ON loyalty_accounts ((coalesce(last_activity_at, create_time)))
    WHERE balance > 0;
CREATE INDEX customers_deleted_idx ON customers (deleted_at)
    WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
