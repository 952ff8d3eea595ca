"""Campaign budgets: points granted within a campaign's caps, and given back.

Every path locks campaign rows in id order (reserve_budget, give_back), so two
transactions never wait on each other in a cycle. Plain SQL; nothing here
commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from customer_core.db import Conn
from customer_core.domain.campaigns import Award, grant_within
from customer_core.domain.loyalty import LedgerEntry

LOCK_BUDGET = """
SELECT budget_total, budget_per_customer, points_awarded
FROM reward_campaigns WHERE id = $1
FOR UPDATE
"""

CUSTOMER_POINTS = """
SELECT points FROM campaign_customer_awards WHERE campaign_id = $1 AND customer_id = $2
"""

ADD_CUSTOMER_POINTS = """
INSERT INTO campaign_customer_awards (campaign_id, customer_id, points, orders)
VALUES ($1, $2, $3, 1)
ON CONFLICT (campaign_id, customer_id) DO UPDATE SET
    points = campaign_customer_awards.points + EXCLUDED.points,
    orders = campaign_customer_awards.orders + 1,
    update_time = now()
"""

ADD_CAMPAIGN_POINTS = """
UPDATE reward_campaigns SET
    points_awarded = points_awarded + $2,
    customers_reached = customers_reached + $3,
    update_time = now()
WHERE id = $1
"""


# Points a reversal (or a skipped entry) gives back: the per-customer counters
# first, then the campaign's (net) totals; a customer left with no points is no
# longer reached. The campaign rows are locked first (LOCK_CAMPAIGNS).
LOCK_CAMPAIGNS = "SELECT id FROM reward_campaigns WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"

GIVE_BACK = """
WITH back AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[])
        AS t(campaign_id, customer_id, points, orders)
), awards AS (
    UPDATE campaign_customer_awards c SET
        points = greatest(c.points - b.points, 0),
        orders = greatest(c.orders - b.orders, 0),
        update_time = now()
    FROM back b
    WHERE c.campaign_id = b.campaign_id AND c.customer_id = b.customer_id AND c.points > 0
    RETURNING c.campaign_id, b.points AS back, c.points = 0 AS gone
), per AS (
    SELECT campaign_id, sum(back) AS points, count(*) FILTER (WHERE gone) AS gone
    FROM awards GROUP BY campaign_id
)
UPDATE reward_campaigns r SET
    points_awarded = greatest(r.points_awarded - per.points, 0),
    customers_reached = greatest(r.customers_reached - per.gone, 0),
    update_time = now()
FROM per WHERE r.id = per.campaign_id
"""


async def reserve_budget(conn: Conn, awards: Sequence[Award]) -> list[Award]:
    """Grant each award within its campaign's budgets; what was granted, possibly less.

    Runs in the caller's transaction. Each campaign row is locked (in id order,
    so two transactions never wait on each other in a cycle) before its
    counters are read, so concurrent consumers are serialised per campaign and
    neither the total nor the per-customer cap is ever exceeded.
    """
    granted: list[Award] = []
    for award in sorted(awards, key=lambda a: (str(a.campaign_id), str(a.customer_id))):
        if award.points <= 0:
            continue
        budget = await conn.fetchrow(LOCK_BUDGET, award.campaign_id)
        if budget is None:
            continue
        total, per_customer, awarded = budget
        had = await conn.fetchval(CUSTOMER_POINTS, award.campaign_id, award.customer_id)
        total_left = None if total is None else total - awarded
        customer_left = None if per_customer is None else per_customer - (had or 0)
        points = grant_within(award.points, total_left, customer_left)
        if points <= 0:
            continue
        await conn.execute(ADD_CUSTOMER_POINTS, award.campaign_id, award.customer_id, points)
        # A customer whose points all came back is reached again.
        await conn.execute(ADD_CAMPAIGN_POINTS, award.campaign_id, points, int(not had))
        granted.append(replace(award, points=points))
    return granted


def budget_of(
    entries: Sequence[LedgerEntry], *, count_orders: bool = True
) -> list[tuple[uuid.UUID, uuid.UUID, int, int]]:
    """(campaign, customer, points, orders) of the campaign entries among `entries`
    (all earned, or all reversed), for `give_back`; without `count_orders` the
    orders stay counted (the rest of a reversal already counted once)."""
    points: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    orders: dict[tuple[uuid.UUID, uuid.UUID], set[str]] = {}
    for e in entries:
        if e.source == "campaign" and e.campaign_id and e.member_id:
            key = (e.campaign_id, e.member_id)
            points[key] = points.get(key, 0) + abs(e.points)
            orders.setdefault(key, set()).add(e.source_ref or "")
    return [
        (c, m, p, len(orders[(c, m)]) if count_orders else 0)
        for (c, m), p in sorted(points.items())
        if p
    ]


async def give_back(conn: Conn, back: Sequence[tuple[uuid.UUID, uuid.UUID, int, int]]) -> None:
    """Return (campaign, customer, points, orders) to the campaigns' budgets, in the
    caller's transaction (the one that reversed, or did not post, those points)."""
    if not back:
        return
    columns = list(zip(*back, strict=True))
    # In id order, as reserve_budget locks them: no cycle between two batches.
    await conn.execute(LOCK_CAMPAIGNS, sorted(set(columns[0])))
    await conn.execute(GIVE_BACK, *[list(c) for c in columns])
