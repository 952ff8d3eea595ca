"""The reward catalogue and redemption rows: plain SQL, functions taking a connection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from customer_core.db import Conn
from customer_core.db.accounts import COUNTS_FOR_TIER
from customer_core.db.redemptions import REDEMPTION_COLUMNS, row_to_redemption
from customer_core.domain.customers import Role
from customer_core.domain.loyalty import Account, Tier
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

ORDER_TAKEN = """
SELECT EXISTS (
    SELECT 1 FROM redemptions
    WHERE order_id = $1 AND state IN ('pending_approval', 'held', 'captured')
)
"""

# Everything a quote reads, in one statement: the customer, the account they
# would spend from (FIND_ACCOUNT's rule; NULL when not created yet), its points
# in the tier window, the reward, and whether the order holds a reward of the
# customer's own family (a quote is no oracle for other families' orders).
QUOTE_FACTS = f"""
SELECT c.role, c.deleted_at IS NOT NULL AS deleted,
       a.id AS account_id, a.customer_id AS account_customer_id,
       a.family_id AS account_family_id, a.balance, a.lifetime_points, a.last_activity_at,
       greatest(coalesce((
           SELECT sum(p.points) FROM loyalty_points p
           WHERE p.account_id = a.id AND p.create_time >= $4 AND {COUNTS_FOR_TIER}
       ), 0), 0) AS window_points,
       EXISTS (
           SELECT 1 FROM redemptions r JOIN customers rc ON rc.id = r.customer_id
           WHERE r.order_id = $3 AND r.state IN ('pending_approval', 'held', 'captured')
             AND rc.family_id = c.family_id
       ) AS order_taken,
       w.id AS reward_id, {", ".join(f"w.{c.strip()}" for c in REWARD_COLUMNS.split(",")[1:])}
FROM customers c
JOIN families f ON f.id = c.family_id
LEFT JOIN loyalty_accounts a
       ON (f.wallet_pooled AND a.family_id = f.id)
       OR (NOT f.wallet_pooled AND a.customer_id = c.id)
LEFT JOIN rewards w ON w.id = $2
WHERE c.id = $1
"""

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


async def order_taken(conn: Conn, order_id: str) -> bool:
    """Whether the order already holds a live (pending, held or captured) redemption."""
    return bool(await conn.fetchval(ORDER_TAKEN, order_id))


async def order_finished(conn: Conn, order_id: str) -> str | None:
    """'cancelled' or 'completed' when the order's events say so; None: still open (or unknown)."""
    row = await conn.fetchrow(ORDER_PROGRESS, order_id)
    if row is None:
        return None
    if row["cancelled"]:
        return "cancelled"
    return "completed" if row["completed"] else None


@dataclass(frozen=True)
class QuoteFacts:
    """What QUOTE_FACTS read; `account` None when the customer has none yet."""

    role: Role
    deleted: bool
    account: Account | None
    window_points: int
    order_taken: bool
    reward: Reward | None


async def quote_facts(
    conn: Conn, customer_id: uuid.UUID, reward_id: uuid.UUID, order_id: str, since: datetime
) -> QuoteFacts | None:
    """What a quote needs, tier points counted from `since`; None for an unknown customer."""
    row = await conn.fetchrow(QUOTE_FACTS, customer_id, reward_id, order_id, since)
    if row is None:
        return None
    account = (
        None
        if row["account_id"] is None
        else Account(
            id=row["account_id"],
            customer_id=row["account_customer_id"],
            family_id=row["account_family_id"],
            balance=row["balance"],
            lifetime_points=row["lifetime_points"],
            last_activity_at=row["last_activity_at"],
        )
    )
    reward = None if row["reward_id"] is None else row_to_reward(row, "reward_id")
    return QuoteFacts(
        Role(row["role"]),
        row["deleted"],
        account,
        int(row["window_points"]),
        row["order_taken"],
        reward,
    )


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
