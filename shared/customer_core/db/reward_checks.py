"""What a quote and a redemption check, each read in one statement.

Both are on the Order Service's path, and each separate read was a round trip
(with asyncpg's encoding and a write to the socket on both sides).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from customer_core.db import Conn
from customer_core.db.accounts import ACCOUNT_COLUMNS, COUNTS_FOR_TIER, account_from_row
from customer_core.db.redemptions import REDEMPTION_COLUMNS, row_to_redemption
from customer_core.db.rewards import REWARD_COLUMNS, row_to_reward
from customer_core.domain.customers import Role
from customer_core.domain.loyalty import Account
from customer_core.domain.rewards import Redemption, Reward

LIVE_STATES = "('pending_approval', 'held', 'captured')"

# Everything a quote reads, in one statement: the customer, the account they
# would spend from (FIND_ACCOUNT's rule; NULL when not created yet), its points
# in the tier window, the reward, and whether the order holds a reward of the
# customer's own family (a quote is no oracle for other families' orders).
QUOTE_FACTS = f"""
SELECT c.role, c.deleted_at IS NOT NULL AS deleted,
       {", ".join(f"a.{c.strip()} AS a_{c.strip()}" for c in ACCOUNT_COLUMNS.split(","))},
       greatest(coalesce((
           SELECT sum(p.points) FROM loyalty_points p
           WHERE p.account_id = a.id AND p.create_time >= $4 AND {COUNTS_FOR_TIER}
       ), 0), 0) AS window_points,
       EXISTS (
           SELECT 1 FROM redemptions r JOIN customers rc ON rc.id = r.customer_id
           WHERE r.order_id = $3 AND r.state IN {LIVE_STATES}
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

# What a redemption reads once it holds the account's lock: the first redemption
# made with the key (a replay), whether the order's events finished it, the
# account's points in the tier window, and whether the order holds a live
# redemption of anyone's (redeeming refuses an order taken anywhere).
REDEEM_FACTS = f"""
SELECT o.completed_at IS NOT NULL AS completed, o.cancelled_at IS NOT NULL AS cancelled,
       greatest(coalesce((
           SELECT sum(p.points) FROM loyalty_points p
           WHERE p.account_id = $3 AND p.create_time >= $4 AND {COUNTS_FOR_TIER}
       ), 0), 0) AS window_points,
       EXISTS (
           SELECT 1 FROM redemptions r WHERE r.order_id = $2 AND r.state IN {LIVE_STATES}
       ) AS order_taken,
       {", ".join(f"k.{c.strip()}" for c in REDEMPTION_COLUMNS.split(","))}
FROM (SELECT 1) AS one
LEFT JOIN redemptions k ON k.idempotency_key = $1
LEFT JOIN order_history o ON o.order_id = $2
"""


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
    account = None if row["a_id"] is None else account_from_row(row, "a_")
    reward = None if row["reward_id"] is None else row_to_reward(row, "reward_id")
    return QuoteFacts(
        Role(row["role"]),
        row["deleted"],
        account,
        int(row["window_points"]),
        row["order_taken"],
        reward,
    )


@dataclass(frozen=True)
class RedeemFacts:
    first: Redemption | None  # made before with the same key
    finished: str | None  # 'completed' or 'cancelled'; None: open (or unknown)
    window_points: int
    order_taken: bool


async def redeem_facts(
    conn: Conn, key: str, order_id: str, account_id: uuid.UUID, since: datetime
) -> RedeemFacts:
    """What a redemption checks under the account's lock, tier points counted from `since`."""
    row = await conn.fetchrow(REDEEM_FACTS, key, order_id, account_id, since)
    assert row is not None  # one row, always
    finished = "cancelled" if row["cancelled"] else "completed" if row["completed"] else None
    return RedeemFacts(
        None if row["id"] is None else row_to_redemption(row),
        finished,
        int(row["window_points"]),
        row["order_taken"],
    )
