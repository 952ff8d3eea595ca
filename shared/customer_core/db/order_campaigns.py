"""The facts campaign rules need of the consumer's batch, set-based: whether any
campaign may be active, family sizes, each customer's first completion, and the
first-order awards a late first completion takes back (usecases.order_campaigns).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from customer_core.db import Conn
from customer_core.db.order_points import EarnedEntry, earned_from

# Per customer, the earliest completion already recorded (first-order facts);
# ties between equal times go to the smaller order id, so arrival never decides.
SELECT_FIRST_COMPLETIONS = """
SELECT DISTINCT ON (customer_id) customer_id, completed_at, order_id FROM order_history
WHERE customer_id = ANY($1::uuid[]) AND completed_at IS NOT NULL
ORDER BY customer_id, completed_at, order_id
"""

# Whether a first-order-only campaign may have awarded an order completed after $1.
FIRST_ORDER_CAMPAIGNS_AFTER = """
SELECT EXISTS (SELECT 1 FROM reward_campaigns
               WHERE ends_at > $1 AND spec #>> '{eligibility,firstOrderOnly}' = 'true')
"""

# Awards of first-order-only campaigns on orders completed after a completion
# that arrived late: they were never the customer's first order.
SELECT_LATER_FIRST_ORDER_AWARDS = """
SELECT p.account_id, p.member_id, p.points, p.source, p.source_ref, p.campaign_id,
       p.idempotency_key
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS t(customer_id, at, order_id)
JOIN order_history o ON o.customer_id = t.customer_id
 AND (o.completed_at, o.order_id) > (t.at, t.order_id)
JOIN loyalty_points p ON p.source_ref = o.order_id AND p.kind = 'earn' AND p.source = 'campaign'
JOIN reward_campaigns rc ON rc.id = p.campaign_id
WHERE rc.spec #>> '{eligibility,firstOrderOnly}' = 'true'
  AND NOT EXISTS (SELECT 1 FROM loyalty_points r
                  WHERE r.idempotency_key = p.idempotency_key || ':reverse')
  AND NOT EXISTS (SELECT 1 FROM points_owed o WHERE o.idempotency_key = p.idempotency_key)
ORDER BY p.id
"""

CAMPAIGNS_OVERLAP = """
SELECT EXISTS (
    SELECT 1 FROM reward_campaigns
    WHERE starts_at <= $2 AND ends_at > $1 AND NOT paused AND (ended_at IS NULL OR ended_at > $1)
)
"""

FAMILY_SIZES = """
SELECT family_id, count(*) AS members FROM customers
WHERE family_id = ANY($1::uuid[]) AND deleted_at IS NULL GROUP BY family_id
"""


async def campaigns_overlap(conn: Conn, first: datetime, last: datetime) -> bool:
    """Whether any campaign may be active between `first` and `last` (a cheap pre-check)."""
    return bool(await conn.fetchval(CAMPAIGNS_OVERLAP, first, last))


async def family_sizes(conn: Conn, family_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await conn.fetch(FAMILY_SIZES, list(set(family_ids)))
    return {r["family_id"]: r["members"] for r in rows}


async def first_completions(
    conn: Conn, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[datetime, str]]:
    """Per customer, (time, order id) of their earliest completion already recorded."""
    rows = await conn.fetch(SELECT_FIRST_COMPLETIONS, sorted(set(customer_ids)))
    return {r["customer_id"]: (r["completed_at"], r["order_id"]) for r in rows}


async def later_first_order_awards(
    conn: Conn, firsts: Mapping[uuid.UUID, tuple[datetime, str]]
) -> list[EarnedEntry]:
    """First-order-only awards (not reversed) on each customer's orders completed after
    the customer's (time, order id) in `firsts`."""
    if not firsts:
        return []
    ids = sorted(firsts)
    rows = await conn.fetch(
        SELECT_LATER_FIRST_ORDER_AWARDS,
        ids,
        [firsts[i][0] for i in ids],
        [firsts[i][1] for i in ids],
    )
    return earned_from(rows)


async def first_order_campaigns_after(conn: Conn, at: datetime) -> bool:
    return bool(await conn.fetchval(FIRST_ORDER_CAMPAIGNS_AFTER, at))
