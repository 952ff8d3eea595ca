"""The family wallet: switches, member accounts, approvals and caps, in plain SQL.

Lock order, the same everywhere: the family row, then loyalty accounts in id
order, then redemption rows. Spending paths lock only their account, so they
queue behind a switch instead of deadlocking with it. Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg

from customer_core.db import Conn
from customer_core.db.accounts import ACCOUNT_COLUMNS, account_from_row
from customer_core.db.redemptions import REDEMPTION_COLUMNS, row_to_redemption
from customer_core.domain.customers import Role
from customer_core.domain.loyalty import Account
from customer_core.domain.rewards import Redemption
from customer_core.domain.wallet import Approval, Member

LOCK_FAMILY = "SELECT wallet_pooled FROM families WHERE id = $1 FOR UPDATE"

SET_POOLED = "UPDATE families SET wallet_pooled = $2, update_time = now() WHERE id = $1"

LIVE_MEMBERS = """
SELECT id, role, create_time FROM customers
WHERE family_id = $1 AND deleted_at IS NULL
ORDER BY create_time, id
"""

CREATE_OWN_ACCOUNTS = """
INSERT INTO loyalty_accounts (id, customer_id)
SELECT gen_random_uuid(), m FROM unnest($1::uuid[]) AS m
ON CONFLICT DO NOTHING
"""

CREATE_WALLET = """
INSERT INTO loyalty_accounts (id, family_id) VALUES (gen_random_uuid(), $1)
ON CONFLICT DO NOTHING
"""

# Every account a switch touches, locked in id order (as post_entries does).
LOCK_ACCOUNTS = f"""
SELECT {ACCOUNT_COLUMNS} FROM loyalty_accounts
WHERE family_id = $1 OR customer_id = ANY($2::uuid[])
ORDER BY id FOR UPDATE
"""

# Redemptions whose points would move with a switch: a hold released later
# would come back to an account nobody spends from any more.
OPEN_REDEMPTIONS = """
SELECT count(*) FROM redemptions
WHERE account_id = ANY($1::uuid[]) AND state IN ('pending_approval', 'held')
"""

LAST_ENTRY_ID = "SELECT coalesce(max(id), 0) FROM loyalty_points"

INSERT_SWITCH = """
INSERT INTO wallet_switches (family_id, kind, start_entry_id, requested_by, moved_points)
VALUES ($1, $2, $3, $4, $5)
RETURNING id
"""

SET_SWITCH_MOVED = "UPDATE wallet_switches SET moved_points = $2 WHERE id = $1"

# Where a period starts: the last switch on ($2 = 'pool'), or the last switch
# of any kind ($2 IS NULL).
PERIOD_START = """
SELECT coalesce((SELECT start_entry_id FROM wallet_switches
                 WHERE family_id = $1 AND ($2::text IS NULL OR kind = $2)
                 ORDER BY id DESC LIMIT 1), 0)
"""

# Net points per member on the wallet after entry $2 (transfers left out when
# $3 is false: a sweep after unpooling returns only what came back since).
CONTRIBUTIONS = """
SELECT member_id, sum(points) AS points FROM loyalty_points
WHERE account_id = $1 AND id > $2 AND member_id IS NOT NULL AND ($3 OR kind <> 'transfer')
GROUP BY member_id
"""

CONTRIBUTION = """
SELECT coalesce(sum(p.points), 0) FROM loyalty_points p
WHERE p.account_id = $1 AND p.member_id = $2
  AND p.id > coalesce((SELECT s.start_entry_id FROM wallet_switches s
                       JOIN loyalty_accounts a ON a.family_id = s.family_id
                       WHERE a.id = $1 AND s.kind = 'pool' ORDER BY s.id DESC LIMIT 1), 0)
"""

# post_entries counts every entry but `expire` as activity; a transfer is not
# the member doing anything, so the clocks are put back afterwards.
SET_ACTIVITY = """
UPDATE loyalty_accounts a SET last_activity_at = t.at
FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, at) WHERE a.id = t.id
"""

# ---- Caps ----------------------------------------------------------------------------

SELECT_CAP = "SELECT weekly_points FROM member_spending_caps WHERE customer_id = $1"

UPSERT_CAP = """
INSERT INTO member_spending_caps (customer_id, weekly_points, set_by) VALUES ($1, $2, $3)
ON CONFLICT (customer_id) DO UPDATE SET
    weekly_points = EXCLUDED.weekly_points, set_by = EXCLUDED.set_by, update_time = now()
"""

DELETE_CAP = "DELETE FROM member_spending_caps WHERE customer_id = $1"

SPENT_SINCE = """
SELECT coalesce(sum(points), 0) FROM redemptions
WHERE customer_id = $1 AND create_time >= $2
  AND state IN ('pending_approval', 'held', 'captured')
"""

# ---- Approvals -----------------------------------------------------------------------

APPROVAL_COLUMNS = "redemption_id, family_id, requested_by, expires_at, decision, decided_by"

INSERT_APPROVAL = """
INSERT INTO redemption_approvals (redemption_id, family_id, requested_by, expires_at)
VALUES ($1, $2, $3, $4)
"""

# Approvals are locked before their redemption, here and in EXPIRE_DUE alike.
LOCK_APPROVAL = f"""
SELECT {APPROVAL_COLUMNS} FROM redemption_approvals WHERE redemption_id = $1 FOR UPDATE
"""

DECIDE = """
UPDATE redemption_approvals SET decision = $2, decided_by = $3, reason = $4, decided_at = now()
WHERE redemption_id = $1 AND decision IS NULL
"""

_R = ", ".join("r." + c.strip() for c in REDEMPTION_COLUMNS.split(","))
_A = ", ".join("a." + c.strip() for c in APPROVAL_COLUMNS.split(","))

# Oldest first, keyset on (create_time, id) of the approval.
LIST_PENDING = f"""
SELECT {_R}, {_A}, a.create_time AS asked_at FROM redemption_approvals a
JOIN redemptions r ON r.id = a.redemption_id
WHERE a.family_id = $1 AND a.decision IS NULL
  AND ($2::timestamptz IS NULL OR (a.create_time, a.redemption_id) > ($2, $3::uuid))
ORDER BY a.create_time, a.redemption_id
LIMIT $4
"""

# SKIP LOCKED: an approval being decided right now is left to that transaction.
EXPIRE_DUE = f"""
WITH due AS (
    SELECT redemption_id FROM redemption_approvals
    WHERE decision IS NULL AND expires_at <= $1
    ORDER BY expires_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), decided AS (
    UPDATE redemption_approvals a SET decision = 'expired', decided_at = now()
    FROM due WHERE a.redemption_id = due.redemption_id
    RETURNING a.redemption_id, a.family_id
)
UPDATE redemptions r SET state = 'expired', update_time = now()
FROM decided d WHERE r.id = d.redemption_id AND r.state = 'pending_approval'
RETURNING {_R}, d.family_id
"""


async def lock_family(conn: Conn, family_id: uuid.UUID) -> bool | None:
    """Whether the family's wallet is pooled, with the family row locked; None: no family."""
    pooled = await conn.fetchval(LOCK_FAMILY, family_id)
    return None if pooled is None else bool(pooled)


async def set_pooled(conn: Conn, family_id: uuid.UUID, pooled: bool) -> None:
    await conn.execute(SET_POOLED, family_id, pooled)


async def live_members(conn: Conn, family_id: uuid.UUID) -> list[Member]:
    rows = await conn.fetch(LIVE_MEMBERS, family_id)
    return [Member(r["id"], Role(r["role"]), r["create_time"]) for r in rows]


async def lock_accounts(
    conn: Conn, family_id: uuid.UUID, members: Sequence[uuid.UUID]
) -> tuple[Account, dict[uuid.UUID, Account]]:
    """The family's wallet and each member's own account, created if missing, locked."""
    await conn.execute(CREATE_WALLET, family_id)
    await conn.execute(CREATE_OWN_ACCOUNTS, list(members))
    rows = [account_from_row(r) for r in await conn.fetch(LOCK_ACCOUNTS, family_id, list(members))]
    wallet = next(a for a in rows if a.family_id == family_id)
    return wallet, {a.customer_id: a for a in rows if a.customer_id is not None}


async def open_redemptions(conn: Conn, account_ids: Sequence[uuid.UUID]) -> int:
    return int(await conn.fetchval(OPEN_REDEMPTIONS, list(account_ids)))


async def insert_switch(
    conn: Conn, family_id: uuid.UUID, kind: str, requested_by: uuid.UUID | None
) -> int:
    """Record a switch; a 'pool' switch's period starts after the newest ledger entry."""
    start = int(await conn.fetchval(LAST_ENTRY_ID))
    return int(await conn.fetchval(INSERT_SWITCH, family_id, kind, start, requested_by, 0))


async def set_switch_moved(conn: Conn, switch_id: int, points: int) -> None:
    await conn.execute(SET_SWITCH_MOVED, switch_id, points)


async def contributions(
    conn: Conn, family_id: uuid.UUID, wallet_id: uuid.UUID, *, since_pool: bool
) -> dict[uuid.UUID, int]:
    """Net points per member on the wallet: since it was last switched on (with the
    balances brought in), or else what reached it since the last switch."""
    since = int(await conn.fetchval(PERIOD_START, family_id, "pool" if since_pool else None))
    rows = await conn.fetch(CONTRIBUTIONS, wallet_id, since, since_pool)
    return {r["member_id"]: int(r["points"]) for r in rows}


async def contribution(conn: Conn, wallet_id: uuid.UUID, member_id: uuid.UUID) -> int:
    """One member's net points on the wallet since it was last switched on."""
    return int(await conn.fetchval(CONTRIBUTION, wallet_id, member_id))


async def set_activity(conn: Conn, clocks: Mapping[uuid.UUID, datetime | None]) -> None:
    if clocks:
        ids = list(clocks)
        await conn.execute(SET_ACTIVITY, ids, [clocks[i] for i in ids])


async def fetch_cap(conn: Conn, customer_id: uuid.UUID) -> int | None:
    value = await conn.fetchval(SELECT_CAP, customer_id)
    return None if value is None else int(value)


async def set_cap(
    conn: Conn, customer_id: uuid.UUID, weekly_points: int, set_by: uuid.UUID
) -> None:
    if weekly_points:
        await conn.execute(UPSERT_CAP, customer_id, weekly_points, set_by)
    else:
        await conn.execute(DELETE_CAP, customer_id)


async def spent_since(conn: Conn, customer_id: uuid.UUID, since: datetime) -> int:
    """Points of the member's live redemptions (pending, held, captured) since `since`."""
    return int(await conn.fetchval(SPENT_SINCE, customer_id, since))


def _approval(row: asyncpg.Record) -> Approval:
    return Approval(
        redemption_id=row["redemption_id"],
        family_id=row["family_id"],
        requested_by=row["requested_by"],
        expires_at=row["expires_at"],
        decision=row["decision"],
        decided_by=row["decided_by"],
    )


async def insert_approval(conn: Conn, a: Approval) -> None:
    await conn.execute(INSERT_APPROVAL, a.redemption_id, a.family_id, a.requested_by, a.expires_at)


async def lock_approval(conn: Conn, redemption_id: uuid.UUID) -> Approval | None:
    row = await conn.fetchrow(LOCK_APPROVAL, redemption_id)
    return _approval(row) if row else None


async def decide(
    conn: Conn, redemption_id: uuid.UUID, decision: str, by: uuid.UUID | None, reason: str = ""
) -> None:
    await conn.execute(DECIDE, redemption_id, decision, by, reason)


async def list_pending(
    conn: Conn, family_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[tuple[Redemption, Approval, datetime]]:
    at, rid = after if after else (None, None)
    rows = await conn.fetch(LIST_PENDING, family_id, at, rid, limit)
    return [(row_to_redemption(r), _approval(r), r["asked_at"]) for r in rows]


async def expire_due(conn: Conn, now: datetime, limit: int) -> list[tuple[Redemption, uuid.UUID]]:
    """Pending approvals past their time -> expired; (redemption, family) of each."""
    rows = await conn.fetch(EXPIRE_DUE, now, limit)
    return [(row_to_redemption(r), r["family_id"]) for r in rows]
