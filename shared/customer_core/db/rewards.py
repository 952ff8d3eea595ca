"""The reward catalogue and redemption rows: plain SQL, functions taking a connection."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from customer_core.db import Conn
from customer_core.db.redemptions import REDEMPTION_COLUMNS, row_to_redemption
from customer_core.domain.loyalty import Tier
from customer_core.domain.rewards import Redemption, Reward

REWARD_COLUMNS = """
    id, display_name, description, points_cost, discount_kind, discount_value,
    currency_code, free_drink_id, min_tier, available_from, available_until, active
"""

SELECT_REWARD = f"SELECT {REWARD_COLUMNS} FROM rewards WHERE id = $1"

# Cheapest first, as a menu reads; keyset on (points_cost, id).
LIST_REWARDS = f"""
SELECT {REWARD_COLUMNS} FROM rewards
WHERE active AND ($1::bigint IS NULL OR (points_cost, id) > ($1::bigint, $2::uuid))
ORDER BY points_cost, id
LIMIT $3
"""

# Every reward that could be offered now; the tier filter is applied in Python.
LIST_AVAILABLE = f"""
SELECT {REWARD_COLUMNS} FROM rewards
WHERE active
  AND (available_from IS NULL OR available_from <= $1)
  AND (available_until IS NULL OR available_until > $1)
ORDER BY points_cost, id
"""

SELECT_REDEMPTION = f"SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = $1"
SELECT_REDEMPTION_FOR_UPDATE = f"{SELECT_REDEMPTION} FOR UPDATE"
SELECT_REDEMPTION_BY_KEY = (
    f"SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE idempotency_key = $1"
)

# Read under the customer's event lock (customer_core.db.inbox.lock_member).
ORDER_PROGRESS = """
SELECT completed_at IS NOT NULL AS completed, cancelled_at IS NOT NULL AS cancelled
FROM order_history WHERE order_id = $1
"""

# Any conflict (the key, or the order already holding a reward) inserts nothing;
# the caller then tells the two apart.
INSERT_REDEMPTION = f"""
INSERT INTO redemptions (id, account_id, customer_id, reward_id, order_id, points, state,
                         idempotency_key, request_hash, hold_expires_at, balance_after)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
RETURNING {REDEMPTION_COLUMNS}
"""


def row_to_reward(row: asyncpg.Record, id_column: str = "id") -> Reward:
    return Reward(
        id=row[id_column],
        display_name=row["display_name"],
        description=row["description"],
        points_cost=row["points_cost"],
        discount_kind=row["discount_kind"],
        discount_value=row["discount_value"],
        currency_code=row["currency_code"],
        free_drink_id=row["free_drink_id"],
        min_tier=Tier(row["min_tier"]) if row["min_tier"] else None,
        available_from=row["available_from"],
        available_until=row["available_until"],
        active=row["active"],
    )


async def fetch_reward(conn: Conn, reward_id: uuid.UUID) -> Reward | None:
    row = await conn.fetchrow(SELECT_REWARD, reward_id)
    return row_to_reward(row) if row else None


async def list_rewards(conn: Conn, after: tuple[int, uuid.UUID] | None, limit: int) -> list[Reward]:
    """The active catalogue (rewards outside their window included), cheapest first."""
    cost, rid = after if after else (None, None)
    return [row_to_reward(r) for r in await conn.fetch(LIST_REWARDS, cost, rid, limit)]


async def list_available_rewards(conn: Conn, now: datetime) -> list[Reward]:
    """Active rewards inside their window at `now`, cheapest first."""
    return [row_to_reward(r) for r in await conn.fetch(LIST_AVAILABLE, now)]


async def fetch_redemption(
    conn: Conn, redemption_id: uuid.UUID, *, lock: bool = False
) -> Redemption | None:
    row = await conn.fetchrow(
        SELECT_REDEMPTION_FOR_UPDATE if lock else SELECT_REDEMPTION, redemption_id
    )
    return row_to_redemption(row) if row else None


async def fetch_redemption_by_key(conn: Conn, key: str) -> Redemption | None:
    row = await conn.fetchrow(SELECT_REDEMPTION_BY_KEY, key)
    return row_to_redemption(row) if row else None


async def order_finished(conn: Conn, order_id: str) -> str | None:
    """'cancelled' or 'completed' when the order's events say so; None: still open (or unknown)."""
    row = await conn.fetchrow(ORDER_PROGRESS, order_id)
    if row is None:
        return None
    if row["cancelled"]:
        return "cancelled"
    return "completed" if row["completed"] else None


async def insert_redemption(conn: Conn, r: Redemption, idempotency_key: str) -> Redemption | None:
    """Insert a new redemption; None when its key or its order is already taken."""
    row = await conn.fetchrow(
        INSERT_REDEMPTION,
        r.id,
        r.account_id,
        r.customer_id,
        r.reward_id,
        r.order_id,
        r.points,
        r.state.value,
        idempotency_key,
        r.request_hash,
        r.hold_expires_at,
        r.balance_after,
    )
    return row_to_redemption(row) if row else None
