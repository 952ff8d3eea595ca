"""Reads of a customer's statistics, balance and tier: plain SQL, one round trip.

The consumer writes order_stats, order_stats_drinks and order_stats_hours;
this module only reads them. The balance and tier are those of the account
the customer spends from: the family's pooled wallet when there is one, else
the customer's own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from customer_core.db import Conn
from customer_core.domain.streams import (
    PEAK_HOURS,
    TOP_DRINKS,
    DrinkCount,
    StatsSnapshot,
    rank_drinks,
    rank_hours,
)

# One row per customer asked for (unknown ids return no row). The top lists
# are limited in SQL with the same order the domain ranks by.
SELECT_SNAPSHOTS = f"""
SELECT c.id,
       s.order_count, s.completed_count, s.cancelled_count, s.total_spent_minor,
       s.payment_count, s.currency_code, s.first_order_at, s.last_order_at,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(d.drink_id, d.drink_name, d.count)), '[]')
          FROM (SELECT drink_id, drink_name, count FROM order_stats_drinks
                WHERE customer_id = c.id AND count > 0
                ORDER BY count DESC, drink_id LIMIT {TOP_DRINKS}) d) AS drinks,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(h.hour_of_week, h.count)), '[]')
          FROM (SELECT hour_of_week, count FROM order_stats_hours
                WHERE customer_id = c.id AND count > 0
                ORDER BY count DESC, hour_of_week LIMIT {PEAK_HOURS}) h) AS hours,
       acc.balance, acc.tier
FROM customers c
LEFT JOIN order_stats s ON s.customer_id = c.id
LEFT JOIN LATERAL (
    SELECT a.balance, a.tier FROM loyalty_accounts a
    LEFT JOIN families f ON f.id = a.family_id
    WHERE a.customer_id = c.id OR (a.family_id = c.family_id AND f.wallet_pooled)
    ORDER BY (a.family_id IS NOT NULL) DESC
    LIMIT 1
) acc ON true
WHERE c.id = ANY($1::uuid[])
"""


def _snapshot(row: Any, now: datetime) -> StatsSnapshot:
    return StatsSnapshot(
        customer_id=row["id"],
        order_count=row["order_count"] or 0,
        completed_count=row["completed_count"] or 0,
        cancelled_count=row["cancelled_count"] or 0,
        total_spent_minor=row["total_spent_minor"] or 0,
        currency_code=row["currency_code"] or "",
        payment_count=row["payment_count"] or 0,
        top_drinks=rank_drinks([DrinkCount(str(i), str(n), int(c)) for i, n, c in row["drinks"]]),
        peak_hours=rank_hours([(int(h), int(c)) for h, c in row["hours"]]),
        first_order_at=row["first_order_at"],
        last_order_at=row["last_order_at"],
        points_balance=row["balance"] or 0,
        tier=row["tier"] or "green",
        read_at=now,
    )


async def fetch_snapshots(
    conn: Conn, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StatsSnapshot]:
    """Snapshots of the customers that exist (deleted ones included: aggregates stay)."""
    if not customer_ids:
        return {}
    rows = await conn.fetch(SELECT_SNAPSHOTS, list(customer_ids))
    now = datetime.now(UTC)
    return {row["id"]: _snapshot(row, now) for row in rows}


CUSTOMER_EXISTS = "SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)"


async def customer_exists(conn: Conn, customer_id: uuid.UUID) -> bool:
    """Whether the customer has a row (deleted customers keep theirs)."""
    return bool(await conn.fetchval(CUSTOMER_EXISTS, customer_id))
