"""Customer notifications: found set-based, recorded once, published from an outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from customer_core.db import Conn
from customer_core.domain.notifications import Notification

# Every live member an account speaks for: its customer, or each member of the
# family whose pooled wallet it is.
_MEMBERS = """
members AS (
    SELECT a.id AS account_id, c.id AS customer_id, a.balance, a.tier,
           coalesce(a.last_activity_at, a.create_time) AS active_at
    FROM loyalty_accounts a JOIN customers c ON c.id = a.customer_id
    WHERE c.deleted_at IS NULL
    UNION ALL
    SELECT a.id, c.id, a.balance, a.tier, coalesce(a.last_activity_at, a.create_time)
    FROM loyalty_accounts a JOIN customers c ON c.family_id = a.family_id
    WHERE a.family_id IS NOT NULL AND c.deleted_at IS NULL
)"""
_TIER_RANK = "array_position(ARRAY['green', 'gold', 'reserve'], {})"

# The unique (customer, reason, subject) key makes each eligibility notify once.
REWARD_AVAILABLE = f"""
WITH {_MEMBERS}
INSERT INTO customer_notifications (id, customer_id, reason, subject, points)
SELECT gen_random_uuid(), m.customer_id, 'reward_available', r.id::text, r.points_cost
FROM members m JOIN rewards r
  ON r.active AND r.points_cost <= m.balance
 AND (r.available_from IS NULL OR r.available_from <= $1)
 AND (r.available_until IS NULL OR r.available_until > $1)
 AND (r.min_tier IS NULL OR {_TIER_RANK.format("m.tier")} >= {_TIER_RANK.format("r.min_tier")})
ON CONFLICT (customer_id, reason, subject) DO NOTHING
"""
TIER_REACHED = f"""
WITH {_MEMBERS}
INSERT INTO customer_notifications (id, customer_id, reason, subject, points)
SELECT gen_random_uuid(), m.customer_id, 'tier_reached', m.tier, m.balance
FROM members m WHERE m.tier <> 'green'
ON CONFLICT (customer_id, reason, subject) DO NOTHING
"""
# Subject: the day the points would expire, so a new spell of inactivity warns again.
POINTS_EXPIRING = f"""
WITH {_MEMBERS}
INSERT INTO customer_notifications (id, customer_id, reason, subject, points, expire_time)
SELECT gen_random_uuid(), m.customer_id, 'points_expiring',
       to_char(timezone('UTC', m.active_at + make_interval(days => $3::int)), 'YYYY-MM-DD'),
       m.balance,
       m.active_at + make_interval(days => $3::int)
FROM members m
WHERE m.balance > 0 AND m.active_at < $1 AND m.active_at >= $2
ON CONFLICT (customer_id, reason, subject) DO NOTHING
"""
PENDING = """
SELECT id, customer_id, reason, subject, points, expire_time, create_time
FROM customer_notifications WHERE published_at IS NULL
ORDER BY create_time, id LIMIT $1
"""
MARK_PUBLISHED = """
UPDATE customer_notifications SET published_at = now() WHERE id = ANY($1::uuid[])
"""


def _count(status: str) -> int:
    # asyncpg returns "INSERT 0 n".
    return int(status.rsplit(" ", 1)[-1])


async def record_rewards_available(conn: Conn, now: datetime) -> int:
    return _count(await conn.execute(REWARD_AVAILABLE, now))


async def record_tiers_reached(conn: Conn) -> int:
    return _count(await conn.execute(TIER_REACHED))


async def record_points_expiring(
    conn: Conn, warn_before: datetime, expire_before: datetime, expiry_days: int
) -> int:
    """Accounts inactive since before `warn_before` but not yet due (`expire_before`)."""
    return _count(await conn.execute(POINTS_EXPIRING, warn_before, expire_before, expiry_days))


async def pending(conn: Conn, limit: int) -> list[Notification]:
    return [Notification(**dict(r)) for r in await conn.fetch(PENDING, limit)]


async def mark_published(conn: Conn, ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(MARK_PUBLISHED, list(ids))
