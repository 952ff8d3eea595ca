"""Loyalty reads and writes of the consumer's batch, set-based: accounts, what orders
earned, tiers, and the facts campaign rules need. Posting entries goes through
customer_core.db.loyalty.post_entries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from customer_core.db import Conn
from customer_core.db.loyalty import VIEWERS_OF_MOVED

# The account each customer earns into: its own, or the family's pooled wallet.
SELECT_ACCOUNTS = """
SELECT c.id AS customer_id,
       CASE WHEN f.wallet_pooled THEN fam.id ELSE own.id END AS account_id,
       CASE WHEN f.wallet_pooled THEN fam.tier ELSE own.tier END AS tier
FROM customers c
JOIN families f ON f.id = c.family_id
LEFT JOIN loyalty_accounts own ON own.customer_id = c.id
LEFT JOIN loyalty_accounts fam ON fam.family_id = f.id
WHERE c.id = ANY($1::uuid[])
"""

CREATE_ACCOUNTS = """
INSERT INTO loyalty_accounts (id, customer_id, family_id)
SELECT DISTINCT ON (owner) gen_random_uuid(), customer_id, family_id
FROM (SELECT CASE WHEN f.wallet_pooled THEN NULL ELSE c.id END AS customer_id,
             CASE WHEN f.wallet_pooled THEN f.id END AS family_id,
             CASE WHEN f.wallet_pooled THEN f.id ELSE c.id END AS owner
      FROM customers c JOIN families f ON f.id = c.family_id
      WHERE c.id = ANY($1::uuid[])) AS wanted
ORDER BY owner
ON CONFLICT DO NOTHING
"""

# Earn entries of the orders (the index on source_ref comes with 0003).
SELECT_EARNED = """
SELECT account_id, member_id, points, source, source_ref, campaign_id, idempotency_key
FROM loyalty_points
WHERE source_ref = ANY($1::text[]) AND kind = 'earn'
ORDER BY id
"""

# Every account the batch may move, locked in id order before any is touched:
# the accounts its customers earn into ($1), those of the cancelled orders' holds and
# those the reversed orders earned into. The global order (SetFamilyWallet, the
# api's spenders and the holds job lock accounts the same way, before any
# redemption row) then leaves no cycle; taken phase by phase (a hold released,
# then an earning) a batch could hold one member's account while waiting for
# another's that a wallet switch held while waiting for the first.
# It answers who sees those balances (their caches go stale), by the rule of
# usecases.balances.viewers, so that costs the batch no round trip of its own.
LOCK_BATCH_ACCOUNTS = f"""
WITH moved AS (
    SELECT id, customer_id, family_id FROM loyalty_accounts WHERE id IN (
        SELECT unnest($1::uuid[])
        UNION
        SELECT account_id FROM redemptions
        WHERE order_id = ANY($2::text[]) AND state IN ('held', 'captured')
        UNION
        SELECT account_id FROM loyalty_points WHERE source_ref = ANY($3::text[]) AND kind = 'earn'
    )
    ORDER BY id FOR UPDATE
)
{VIEWERS_OF_MOVED}"""

SELECT_BALANCES = """
SELECT id, balance FROM loyalty_accounts WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
"""

# The same rule as customer_core.db.loyalty.WINDOW_POINTS, for many accounts at once.
WINDOW_POINTS = """
SELECT a.id, a.tier,
       greatest(coalesce((
           SELECT sum(p.points) FROM loyalty_points p
           WHERE p.account_id = a.id AND p.create_time >= $2
             AND (p.kind IN ('earn', 'adjust') OR (p.kind = 'reverse' AND p.source <> 'reward'))
       ), 0), 0) AS points
FROM loyalty_accounts a WHERE a.id = ANY($1::uuid[])
"""

SET_TIERS = """
UPDATE loyalty_accounts a SET tier = t.tier, update_time = now()
FROM unnest($1::uuid[], $2::text[]) AS t(id, tier) WHERE a.id = t.id
"""

SELECT_COMPLETED_COUNTS = """
SELECT customer_id, completed_count FROM order_stats WHERE customer_id = ANY($1::uuid[])
"""


@dataclass(frozen=True)
class EarnedEntry:
    account_id: uuid.UUID
    member_id: uuid.UUID | None
    points: int
    source: str
    order_id: str
    campaign_id: uuid.UUID | None
    idempotency_key: str


async def accounts(
    conn: Conn, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
    """Per customer: (account id, tier), creating missing accounts."""
    wanted = list(set(customer_ids))
    if not wanted:
        return {}
    rows = await conn.fetch(SELECT_ACCOUNTS, wanted)
    if any(r["account_id"] is None for r in rows):
        await conn.execute(
            CREATE_ACCOUNTS, [r["customer_id"] for r in rows if r["account_id"] is None]
        )
        rows = await conn.fetch(SELECT_ACCOUNTS, wanted)
    return {r["customer_id"]: (r["account_id"], r["tier"]) for r in rows if r["account_id"]}


async def lock_batch_accounts(
    conn: Conn,
    account_ids: Iterable[uuid.UUID],
    cancelled: Iterable[str],
    reversed_orders: Iterable[str],
) -> dict[uuid.UUID, uuid.UUID]:
    """Lock every account the batch may move, in id order (see LOCK_BATCH_ACCOUNTS);
    returns who sees their balances (customer -> family)."""
    rows = await conn.fetch(
        LOCK_BATCH_ACCOUNTS, sorted(set(account_ids)), sorted(set(cancelled)),
        sorted(set(reversed_orders)),
    )  # fmt: skip
    return {r["id"]: r["family_id"] for r in rows}


async def earned_for_orders(conn: Conn, order_ids: Iterable[str]) -> list[EarnedEntry]:
    rows = await conn.fetch(SELECT_EARNED, sorted(set(order_ids)))
    return [
        EarnedEntry(
            r["account_id"],
            r["member_id"],
            r["points"],
            r["source"],
            r["source_ref"],
            r["campaign_id"],
            r["idempotency_key"],
        )
        for r in rows
    ]


async def lock_balances(conn: Conn, account_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await conn.fetch(SELECT_BALANCES, sorted(set(account_ids)))
    return {r["id"]: r["balance"] for r in rows}


async def window_points(
    conn: Conn, account_ids: Iterable[uuid.UUID], since: datetime
) -> dict[uuid.UUID, tuple[str, int]]:
    """Per account: (current tier, points in the tier window)."""
    rows = await conn.fetch(WINDOW_POINTS, sorted(set(account_ids)), since)
    return {r["id"]: (r["tier"], r["points"]) for r in rows}


async def set_tiers(conn: Conn, tiers: Mapping[uuid.UUID, str]) -> None:
    if tiers:
        ids = sorted(tiers)
        await conn.execute(SET_TIERS, ids, [tiers[i] for i in ids])


async def completed_counts(conn: Conn, customer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await conn.fetch(SELECT_COMPLETED_COUNTS, list(set(customer_ids)))
    return {r["customer_id"]: r["completed_count"] for r in rows}


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
