"""Reconciliation checks: read-only queries that list what does not add up."""

from __future__ import annotations

from customer_core.db import Conn

# Balance differs from the sum of its ledger entries.
BALANCE_MISMATCH = """
SELECT a.id::text AS id, a.balance, coalesce(l.total, 0) AS ledger
FROM loyalty_accounts a
LEFT JOIN (SELECT account_id, sum(points) AS total FROM loyalty_points GROUP BY account_id) l
       ON l.account_id = a.id
WHERE a.balance <> coalesce(l.total, 0)
ORDER BY a.id LIMIT $1
"""
BALANCE_MISMATCH_COUNT = """
SELECT count(*) FROM loyalty_accounts a
LEFT JOIN (SELECT account_id, sum(points) AS total FROM loyalty_points GROUP BY account_id) l
       ON l.account_id = a.id
WHERE a.balance <> coalesce(l.total, 0)
"""
# The CHECK makes a negative balance impossible; a negative ledger sum is not.
NEGATIVE = """
SELECT account_id::text AS id FROM loyalty_points GROUP BY account_id HAVING sum(points) < 0
UNION
SELECT id::text FROM loyalty_accounts WHERE balance < 0
ORDER BY 1 LIMIT $1
"""
NEGATIVE_COUNT = f"SELECT count(*) FROM ({NEGATIVE.replace('LIMIT $1', '')}) n"
# Each completed order that records points earned has exactly one order earn
# entry, and no order has more than one. The earn key is `order:{id}:earn`.
_EARNED = """
WITH earned AS (
    SELECT regexp_replace(
               coalesce(substring(idempotency_key FROM '^order:(.*):earn$'), source_ref),
               '^orders/', '') AS order_id,
           count(*) AS entries
    FROM loyalty_points WHERE kind = 'earn' AND source = 'order'
    GROUP BY 1
), wrong AS (
    SELECT coalesce(h.order_id, e.order_id) AS id
    FROM (SELECT order_id, points_earned FROM order_history_all
          WHERE completed_at IS NOT NULL AND points_earned > 0) h
    FULL JOIN earned e ON e.order_id = h.order_id
    WHERE coalesce(e.entries, 0) > 1 OR (h.order_id IS NOT NULL AND coalesce(e.entries, 0) <> 1)
)
"""
EARNED_WRONG = _EARNED + "SELECT id FROM wrong ORDER BY id LIMIT $1"
EARNED_WRONG_COUNT = _EARNED + "SELECT count(*) FROM wrong"

CHECKS = {
    "balance_mismatch": (BALANCE_MISMATCH_COUNT, BALANCE_MISMATCH),
    "negative_balance": (NEGATIVE_COUNT, NEGATIVE),
    "order_earned": (EARNED_WRONG_COUNT, EARNED_WRONG),
}


async def find(conn: Conn, check: str, limit: int) -> tuple[int, list[str]]:
    """How many rows fail `check`, and the ids of the first `limit` of them."""
    count_sql, list_sql = CHECKS[check]
    count = int(await conn.fetchval(count_sql))
    ids = [str(r["id"]) for r in await conn.fetch(list_sql, limit)] if count else []
    return count, ids
