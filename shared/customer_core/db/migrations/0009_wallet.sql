-- The family wallet: switch history (where "since pooling" starts), child
-- approvals and per-member weekly spending caps. families.wallet_pooled (0001)
-- stays the switch every reader looks at.

-- One row per switch that changed the state or moved points. A 'pool' row's
-- start_entry_id is the last ledger id before it: the member contributions
-- the unpooling split uses are the wallet's entries after it.
CREATE TABLE wallet_switches (
    id              bigserial PRIMARY KEY,
    family_id       uuid NOT NULL REFERENCES families (id),
    kind            text NOT NULL CHECK (kind IN ('pool', 'unpool', 'sweep')),
    start_entry_id  bigint NOT NULL,
    requested_by    uuid,
    moved_points    bigint NOT NULL DEFAULT 0,
    create_time     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallet_switches_family_idx ON wallet_switches (family_id, id DESC);

-- A child's redemption from the pool waits here for an adult.
CREATE TABLE redemption_approvals (
    redemption_id  uuid PRIMARY KEY REFERENCES redemptions (id),
    family_id      uuid NOT NULL REFERENCES families (id),
    requested_by   uuid NOT NULL REFERENCES customers (id),
    expires_at     timestamptz NOT NULL,
    decision       text CHECK (decision IN ('approved', 'declined', 'expired')),
    decided_by     uuid REFERENCES customers (id),
    decided_at     timestamptz,
    reason         text NOT NULL DEFAULT '',
    create_time    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX redemption_approvals_pending_idx ON redemption_approvals (family_id, create_time)
    WHERE decision IS NULL;
CREATE INDEX redemption_approvals_due_idx ON redemption_approvals (expires_at)
    WHERE decision IS NULL;

-- What a member may redeem per ISO week; no row: no cap.
CREATE TABLE member_spending_caps (
    customer_id    uuid PRIMARY KEY REFERENCES customers (id),
    weekly_points  bigint NOT NULL CHECK (weekly_points > 0),
    set_by         uuid REFERENCES customers (id),
    update_time    timestamptz NOT NULL DEFAULT now()
);

-- The cap counts a member's redemptions of the week.
CREATE INDEX redemptions_customer_time_idx ON redemptions (customer_id, create_time);
