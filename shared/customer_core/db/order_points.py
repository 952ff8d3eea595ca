"""Loyalty reads and writes of the consumer's batch, set-based: accounts, what orders
earned and tiers. Posting entries goes through customer_core.db.loyalty.post_entries;
which account a customer uses, db.accounts; the facts campaign rules need,
db.order_campaigns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import asyncpg

from customer_core.db import Conn
from customer_core.db.loyalty import VIEWERS_OF_MOVED
from customer_core.domain.values import quick_init

# Earn entries of the orders not reversed yet (the index on source_ref comes with
# 0003; a reversal's first entry carries the `:reverse` key, and one that could
# not take it all has a points_owed row).
SELECT_EARNED = """
SELECT p.account_id, p.member_id, p.points, p.source, p.source_ref, p.campaign_id,
       p.idempotency_key
FROM loyalty_points p
WHERE p.source_ref = ANY($1::text[]) AND p.kind = 'earn'
  AND NOT EXISTS (SELECT 1 FROM loyalty_points r
                  WHERE r.idempotency_key = p.idempotency_key || ':reverse')
  AND NOT EXISTS (SELECT 1 FROM points_owed o WHERE o.idempotency_key = p.idempotency_key)
ORDER BY p.id
"""

# Every account a member's earnings may have moved to by pooling and unpooling:
# the family's wallet, the member's own, the other live members' own (an
# unpooling split can hand points to anyone), plus the accounts $2 the points
# were earned into. Only accounts the batch already locked upfront ($3, from
# LOCK_BATCH_ACCOUNTS): this takes no new lock, so no account is ever locked
# after a higher-id one (an account that joined the family since holds none of
# the member's points).
SELECT_FAMILY_ACCOUNTS = """
WITH m AS (
    SELECT c.id, c.family_id, f.wallet_pooled FROM customers c
    JOIN families f ON f.id = c.family_id WHERE c.id = ANY($1::uuid[])
), cand AS (
    SELECT m.id AS member_id, a.id AS account_id, m.wallet_pooled AS current
    FROM m JOIN loyalty_accounts a ON a.family_id = m.family_id
    UNION ALL
    SELECT m.id, a.id, NOT m.wallet_pooled AND s.id = m.id
    FROM m JOIN customers s ON s.family_id = m.family_id AND (s.deleted_at IS NULL OR s.id = m.id)
    JOIN loyalty_accounts a ON a.customer_id = s.id
    UNION ALL
    SELECT NULL, t.id, false FROM unnest($2::uuid[]) AS t(id)
)
SELECT cand.member_id, cand.current, a.id, a.balance, a.family_id IS NOT NULL AS wallet,
       a.customer_id
FROM cand JOIN loyalty_accounts a ON a.id = cand.account_id
WHERE a.id = ANY($3::uuid[])
ORDER BY a.id
"""

# Every account the batch may move, locked in id order before any is touched:
# the accounts its customers earn into ($1), those of the cancelled orders' holds
# ($2), those the reversed orders earned into ($3) and every account of the
# families of the members whose earnings may be reversed ($4, plus whoever earned
# on the orders $3): a reversal follows pooling and unpooling to the family's
# wallet and the other members' own accounts (SELECT_FAMILY_ACCOUNTS, which
# takes only accounts locked here).
# The global order (docs/wallet.md, Concurrency; SetFamilyWallet, the api's
# spenders and the holds job lock accounts the same way, before any approval or
# redemption row) then leaves no cycle; taken phase by phase (a hold released,
# then an earning, then a reversal) a batch could hold one member's account while
# waiting for another's that a wallet switch held while waiting for the first.
# It answers which accounts it locked (account_id) and who sees those balances
# (customer_id, family_id: their caches go stale) by the rule of
# usecases.balances.viewers, so that costs the batch no round trip of its own.
LOCK_BATCH_ACCOUNTS = f"""
WITH reversing AS (
    SELECT unnest($4::uuid[]) AS id
    UNION
    SELECT member_id FROM loyalty_points
    WHERE source_ref = ANY($3::text[]) AND kind = 'earn' AND member_id IS NOT NULL
), families AS (
    SELECT DISTINCT c.family_id FROM customers c JOIN reversing r ON r.id = c.id
), moved AS (
    SELECT id, customer_id, family_id FROM loyalty_accounts WHERE id IN (
        SELECT unnest($1::uuid[])
        UNION
        SELECT account_id FROM redemptions
        WHERE order_id = ANY($2::text[]) AND state IN ('held', 'captured')
        UNION
        SELECT account_id FROM loyalty_points WHERE source_ref = ANY($3::text[]) AND kind = 'earn'
        UNION
        SELECT a.id FROM families f JOIN loyalty_accounts a ON a.family_id = f.family_id
        UNION
        SELECT a.id FROM families f JOIN customers s ON s.family_id = f.family_id
        JOIN loyalty_accounts a ON a.customer_id = s.id
    )
    ORDER BY id FOR UPDATE
), viewers AS ({VIEWERS_OF_MOVED})
SELECT NULL::uuid AS account_id, id AS customer_id, family_id FROM viewers
UNION ALL
SELECT id, NULL, NULL FROM moved
"""

# Orders outside the batch whose points changed (a first-order award taken over).
ADD_ORDER_POINTS = """
UPDATE order_history o SET points_earned = o.points_earned + t.delta
FROM unnest($1::text[], $2::bigint[]) AS t(order_id, delta) WHERE o.order_id = t.order_id
"""

SET_TIERS = """
UPDATE loyalty_accounts a SET tier = t.tier, update_time = now()
FROM unnest($1::uuid[], $2::text[]) AS t(id, tier) WHERE a.id = t.id
"""


@quick_init
@dataclass(frozen=True)
class EarnedEntry:
    account_id: uuid.UUID
    member_id: uuid.UUID | None
    points: int
    source: str
    order_id: str
    campaign_id: uuid.UUID | None
    idempotency_key: str


@dataclass(frozen=True)
class BatchLock:
    """What LOCK_BATCH_ACCOUNTS locked, and who sees those balances."""

    accounts: frozenset[uuid.UUID]
    viewers: dict[uuid.UUID, uuid.UUID]  # customer -> family


async def lock_batch_accounts(
    conn: Conn,
    account_ids: Iterable[uuid.UUID],
    cancelled: Iterable[str],
    reversed_orders: Iterable[str],
    reversing_members: Iterable[uuid.UUID] = (),
) -> BatchLock:
    """Lock every account the batch may move, in id order (see LOCK_BATCH_ACCOUNTS)."""
    rows = await conn.fetch(
        LOCK_BATCH_ACCOUNTS,
        sorted(set(account_ids)),
        sorted(set(cancelled)),
        sorted(set(reversed_orders)),
        sorted(set(reversing_members)),
    )
    return BatchLock(
        frozenset(r["account_id"] for r in rows if r["account_id"] is not None),
        {r["customer_id"]: r["family_id"] for r in rows if r["account_id"] is None},
    )


@dataclass(frozen=True)
class FamilyAccount:
    """An account a member's earnings may be on now (see SELECT_FAMILY_ACCOUNTS)."""

    id: uuid.UUID
    balance: int
    current: bool  # where the member earns and spends now
    wallet: bool  # the family's pooled wallet
    owner: uuid.UUID | None  # the customer of an own account


def earned_from(rows: Iterable[asyncpg.Record]) -> list[EarnedEntry]:
    """Earn entries from rows of SELECT_EARNED's columns."""
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


async def earned_for_orders(conn: Conn, order_ids: Iterable[str]) -> list[EarnedEntry]:
    """The orders' earn entries that were not reversed yet, in ledger order."""
    return earned_from(await conn.fetch(SELECT_EARNED, sorted(set(order_ids))))


async def family_accounts(
    conn: Conn,
    members: Iterable[uuid.UUID],
    earned_into: Iterable[uuid.UUID],
    locked: Iterable[uuid.UUID],
) -> tuple[dict[uuid.UUID, list[FamilyAccount]], dict[uuid.UUID, int]]:
    """Per member, the accounts their earnings may be on now; and every balance. Only
    the `locked` accounts (the batch's upfront lock), so their balances hold still."""
    rows = await conn.fetch(
        SELECT_FAMILY_ACCOUNTS, sorted(set(members)), sorted(set(earned_into)), sorted(set(locked))
    )
    per_member: dict[uuid.UUID, list[FamilyAccount]] = {}
    balances: dict[uuid.UUID, int] = {}
    for r in rows:
        balances[r["id"]] = r["balance"]
        if r["member_id"] is not None:
            per_member.setdefault(r["member_id"], []).append(
                FamilyAccount(r["id"], r["balance"], r["current"], r["wallet"], r["customer_id"])
            )
    return per_member, balances


async def add_order_points(conn: Conn, deltas: Mapping[str, int]) -> None:
    if deltas:
        ids = sorted(deltas)
        await conn.execute(ADD_ORDER_POINTS, ids, [deltas[i] for i in ids])


async def set_tiers(conn: Conn, tiers: Mapping[uuid.UUID, str]) -> None:
    if tiers:
        ids = sorted(tiers)
        await conn.execute(SET_TIERS, ids, [tiers[i] for i in ids])
