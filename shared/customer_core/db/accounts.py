"""Loyalty accounts: which one a customer uses, their rows, and the tier window.

A customer earns into and spends from their own account, or the family's when
its wallet is pooled. Every module that reads an account row or counts tier
points takes it from here. Plain SQL; nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from customer_core.db import Conn
from customer_core.domain import names
from customer_core.domain.loyalty import Account

ACCOUNT_COLUMNS = "id, customer_id, family_id, balance, lifetime_points, last_activity_at"

# The customer's own account, or the family's when its wallet is pooled.
FIND_ACCOUNT = """
SELECT c.family_id AS member_family_id, f.wallet_pooled,
       a.id, a.customer_id, a.family_id, a.balance, a.lifetime_points, a.last_activity_at
FROM customers c
JOIN families f ON f.id = c.family_id
LEFT JOIN loyalty_accounts a
       ON (f.wallet_pooled AND a.family_id = f.id)
       OR (NOT f.wallet_pooled AND a.customer_id = c.id)
WHERE c.id = $1
"""

CREATE_ACCOUNT = """
INSERT INTO loyalty_accounts (id, customer_id, family_id) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""

LOCK_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM loyalty_accounts WHERE id = $1 FOR UPDATE"

# Points that count towards a tier: earnings and operator corrections in the
# window, less earnings taken back (a `reverse` that is not a reward's).
# One rule for the single account and the consumer's batch below.
COUNTS_FOR_TIER = "(p.kind IN ('earn', 'adjust') OR (p.kind = 'reverse' AND p.source <> 'reward'))"

WINDOW_POINTS = f"""
SELECT greatest(coalesce(sum(p.points), 0), 0) FROM loyalty_points p
WHERE p.account_id = $1 AND p.create_time >= $2 AND {COUNTS_FOR_TIER}
"""

BATCH_WINDOW_POINTS = f"""
SELECT a.id, a.tier,
       greatest(coalesce((
           SELECT sum(p.points) FROM loyalty_points p
           WHERE p.account_id = a.id AND p.create_time >= $2 AND {COUNTS_FOR_TIER}
       ), 0), 0) AS points
FROM loyalty_accounts a WHERE a.id = ANY($1::uuid[])
"""


# FIND_ACCOUNT's rule for many customers at once (the consumer's batch), with the tier.
BATCH_ACCOUNTS = """
SELECT c.id AS customer_id,
       CASE WHEN f.wallet_pooled THEN fam.id ELSE own.id END AS account_id,
       CASE WHEN f.wallet_pooled THEN fam.tier ELSE own.tier END AS tier
FROM customers c
JOIN families f ON f.id = c.family_id
LEFT JOIN loyalty_accounts own ON own.customer_id = c.id
LEFT JOIN loyalty_accounts fam ON fam.family_id = f.id
WHERE c.id = ANY($1::uuid[])
"""

CREATE_BATCH_ACCOUNTS = """
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


def account_from_row(row: asyncpg.Record, prefix: str = "") -> Account:
    """An Account from a row holding ACCOUNT_COLUMNS, each name after `prefix`."""
    return Account(
        id=row[f"{prefix}id"],
        customer_id=row[f"{prefix}customer_id"],
        family_id=row[f"{prefix}family_id"],
        balance=row[f"{prefix}balance"],
        lifetime_points=row[f"{prefix}lifetime_points"],
        last_activity_at=row[f"{prefix}last_activity_at"],
    )


async def account_for_customer(conn: Conn, customer_id: uuid.UUID) -> Account | None:
    """The account the customer earns into and spends from, created if missing.

    That is the customer's own account, or the family's when the family's
    wallet is pooled. Deleted customers keep theirs (the ledger is kept,
    keyed by id). None when no such customer exists.
    """
    for _ in range(2):
        row = await conn.fetchrow(FIND_ACCOUNT, customer_id)
        if row is None:
            return None
        if row["id"] is not None:
            return account_from_row(row)
        pooled = row["wallet_pooled"]
        await conn.execute(
            CREATE_ACCOUNT,
            uuid.uuid4(),
            None if pooled else customer_id,
            row["member_family_id"] if pooled else None,
        )
    raise AssertionError(f"no loyalty account for {names.customer_name(customer_id)}")


async def lock_account(conn: Conn, account_id: uuid.UUID) -> Account:
    """The account's current row, locked until the transaction ends (serialises spending)."""
    row = await conn.fetchrow(LOCK_ACCOUNT, account_id)
    assert row is not None, f"loyalty account {account_id} vanished"
    return account_from_row(row)


async def window_points(conn: Conn, account_id: uuid.UUID, since: datetime) -> int:
    """Points that count towards the tier, earned at or after `since` (never negative)."""
    return int(await conn.fetchval(WINDOW_POINTS, account_id, since))


async def batch_window_points(
    conn: Conn, account_ids: Iterable[uuid.UUID], since: datetime
) -> dict[uuid.UUID, tuple[str, int]]:
    """Per account: (current tier, points in the tier window)."""
    rows = await conn.fetch(BATCH_WINDOW_POINTS, sorted(set(account_ids)), since)
    return {r["id"]: (r["tier"], r["points"]) for r in rows}


async def batch_accounts(
    conn: Conn, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
    """Per customer: (account id, tier), creating missing accounts (the consumer's batch)."""
    wanted = list(set(customer_ids))
    if not wanted:
        return {}
    rows = await conn.fetch(BATCH_ACCOUNTS, wanted)
    if any(r["account_id"] is None for r in rows):
        await conn.execute(
            CREATE_BATCH_ACCOUNTS, [r["customer_id"] for r in rows if r["account_id"] is None]
        )
        rows = await conn.fetch(BATCH_ACCOUNTS, wanted)
    return {r["customer_id"]: (r["account_id"], r["tier"]) for r in rows if r["account_id"]}
