-- Loyalty: one reward per order, the balance a hold left (replayed to a retry
-- with the same idempotency key), indexes for held points, and the starting
-- reward catalogue.

ALTER TABLE redemptions ADD COLUMN balance_after bigint NOT NULL DEFAULT 0;

-- One live reward per order: a second RedeemReward for the same order (any key)
-- is refused, so concurrent callers cannot discount an order twice.
CREATE UNIQUE INDEX redemptions_one_per_order ON redemptions (order_id)
    WHERE state IN ('pending_approval', 'held', 'captured');

-- Held points per account (GetLoyaltyAccount, the order context).
CREATE INDEX redemptions_account_held_idx ON redemptions (account_id) WHERE state = 'held';

-- Fixed ids, so environments and tests can name the seeded rewards.
INSERT INTO rewards (id, display_name, description, points_cost, discount_kind,
                     discount_value, currency_code, free_drink_id, min_tier,
                     available_from, available_until)
VALUES
    ('5eed0000-0000-4000-8000-000000000001', 'Customization on us',
     'An extra shot, syrup or dairy swap, free.', 25, 'amount_off', 100, 'USD', NULL, NULL,
     NULL, NULL),
    ('5eed0000-0000-4000-8000-000000000002', 'Free brewed coffee',
     'A brewed coffee or hot tea of any size.', 100, 'free_drink', 0, NULL, 'brewed-coffee', NULL,
     NULL, NULL),
    ('5eed0000-0000-4000-8000-000000000003', 'Half off a handcrafted drink',
     'Half the price of one handcrafted drink.', 200, 'percent_off', 50, NULL, NULL, NULL,
     NULL, NULL),
    ('5eed0000-0000-4000-8000-000000000004', 'Five off your order',
     'Five dollars off one order.', 400, 'amount_off', 500, 'USD', NULL, 'gold',
     NULL, NULL),
    ('5eed0000-0000-4000-8000-000000000005', 'Reserve tasting flight',
     'Three Reserve coffees, tasted side by side.', 800, 'free_drink', 0, NULL, 'reserve-flight',
     'reserve', NULL, NULL),
    ('5eed0000-0000-4000-8000-000000000006', 'Launch week special',
     'Twenty percent off, for the opening week only.', 50, 'percent_off', 20, NULL, NULL, NULL,
     '2024-01-01T00:00:00Z', '2024-01-08T00:00:00Z');
