"""Redemption state changes, in plain SQL: the one place a redemption's state moves.

held -> captured (the order completed), held -> released / captured ->
refunded (the order was cancelled or the customer reversed it), held ->
expired (the hold timed out), pending_approval -> held / declined / expired
(a guardian's decision). Points coming back are posted through
db.loyalty.post_entries. Accounts are locked before redemption rows, the order
every path takes. Nothing here commits: callers own the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from customer_core.db import Conn
from customer_core.db import campaign_budgets as campaign_budgets_db
from customer_core.db import owed as owed_db
from customer_core.db.loyalty import LOCK_ACCOUNTS, post_entries
from customer_core.domain import names
from customer_core.domain.loyalty import LedgerEntry
from customer_core.domain.rewards import Redemption, RedemptionState

REDEMPTION_COLUMNS = """
    id, account_id, customer_id, reward_id, order_id, points, state, request_hash,
    hold_expires_at, balance_after, create_time, update_time
"""

SET_STATE = f"""
UPDATE redemptions SET state = $2, update_time = now()
WHERE id = $1
RETURNING {REDEMPTION_COLUMNS}
"""


CAPTURE = f"""
UPDATE redemptions SET state = 'captured', update_time = now()
WHERE order_id = ANY($1::text[]) AND state = 'held'
RETURNING {REDEMPTION_COLUMNS}
"""

RELEASE = f"""
UPDATE redemptions SET
    state = CASE WHEN state = 'held' THEN 'released' ELSE 'refunded' END,
    update_time = now()
WHERE order_id = ANY($1::text[]) AND state IN ('held', 'captured')
RETURNING {REDEMPTION_COLUMNS}
"""

# The accounts of the holds due next, locked (in id order) before their
# redemption rows, the order every path takes: a consumer's batch holds the
# accounts it moves while it releases an order's hold.
DUE_HOLD_ACCOUNTS = """
SELECT DISTINCT account_id FROM (
    SELECT account_id FROM redemptions
    WHERE state = 'held' AND hold_expires_at <= $1
    ORDER BY hold_expires_at LIMIT $2
) AS due
"""

# SKIP LOCKED: a hold being captured right now is left for that transaction.
# Only holds on the accounts already locked ($3).
EXPIRE_DUE = f"""
WITH due AS (
    SELECT id FROM redemptions
    WHERE state = 'held' AND hold_expires_at <= $1 AND account_id = ANY($3::uuid[])
    ORDER BY hold_expires_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE redemptions r SET state = 'expired', update_time = now()
FROM due WHERE r.id = due.id
RETURNING {", ".join("r." + c.strip() for c in REDEMPTION_COLUMNS.split(","))}
"""


PLACE_HOLD = f"""
UPDATE redemptions SET state = 'held', hold_expires_at = $2, balance_after = $3,
                       update_time = now()
WHERE id = $1 AND state = 'pending_approval'
RETURNING {REDEMPTION_COLUMNS}
"""

SET_PENDING_STATE = f"""
UPDATE redemptions SET state = $2, update_time = now()
WHERE id = $1 AND state = 'pending_approval'
RETURNING {REDEMPTION_COLUMNS}
"""


# A child's redemption still waiting when its order completed or was cancelled
# could only ever hold points nothing captures: it ends as expired.
END_PENDING_FOR_ORDERS = """
WITH due AS (
    SELECT id FROM redemptions WHERE order_id = ANY($1::text[]) AND state = 'pending_approval'
), decided AS (
    UPDATE redemption_approvals a SET decision = 'expired', decided_at = now()
    FROM due WHERE a.redemption_id = due.id AND a.decision IS NULL
    RETURNING a.redemption_id, a.family_id
)
UPDATE redemptions r SET state = 'expired', update_time = now()
FROM decided d WHERE r.id = d.redemption_id AND r.state = 'pending_approval'
RETURNING r.customer_id
"""


def row_to_redemption(row: asyncpg.Record) -> Redemption:
    return Redemption(
        id=row["id"],
        account_id=row["account_id"],
        customer_id=row["customer_id"],
        reward_id=row["reward_id"],
        order_id=row["order_id"],
        points=row["points"],
        state=RedemptionState(row["state"]),
        request_hash=row["request_hash"],
        hold_expires_at=row["hold_expires_at"],
        balance_after=row["balance_after"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


async def set_redemption_state(
    conn: Conn, redemption_id: uuid.UUID, state: RedemptionState
) -> Redemption:
    row = await conn.fetchrow(SET_STATE, redemption_id, state.value)
    assert row is not None
    return row_to_redemption(row)


async def place_hold(
    conn: Conn, redemption_id: uuid.UUID, hold_expires_at: datetime, balance_after: int
) -> Redemption:
    row = await conn.fetchrow(PLACE_HOLD, redemption_id, hold_expires_at, balance_after)
    assert row is not None, "the redemption is locked and pending"
    return row_to_redemption(row)


async def end_pending(conn: Conn, redemption_id: uuid.UUID, state: str) -> Redemption:
    """pending_approval -> declined or expired (no points moved: none had left)."""
    row = await conn.fetchrow(SET_PENDING_STATE, redemption_id, state)
    assert row is not None, "the redemption is locked and pending"
    return row_to_redemption(row)


def _reverse_entry(r: Redemption, reason: str) -> LedgerEntry:
    return LedgerEntry(
        account_id=r.account_id,
        member_id=r.customer_id,
        kind="reverse",
        points=r.points,
        reason=reason,
        source="reward",
        source_ref=names.redemption_name(r.id),
        idempotency_key=f"redemption:{r.id}:reverse",
    )


async def _refund(conn: Conn, redemptions: Sequence[Redemption], reason: str) -> None:
    # Points coming back first pay what a cancelled order's reversal still owes
    # (it could not take them while they were held).
    await post_entries(conn, [_reverse_entry(r, reason) for r in redemptions])
    owed = await post_entries(conn, await owed_db.collect(conn, redemptions))
    await campaign_budgets_db.give_back(
        conn, campaign_budgets_db.budget_of(owed, count_orders=False)
    )


async def capture_holds_for_order(conn: Conn, order_ids: Sequence[str]) -> list[Redemption]:
    """held -> captured for the orders' redemptions (the order completed).

    No ledger entry: the points already left with the `redeem` entry. Holds
    already released, expired or captured are left alone, so replaying the
    event changes nothing. Returns the redemptions captured now.
    """
    if not order_ids:
        return []
    return [row_to_redemption(r) for r in await conn.fetch(CAPTURE, list(order_ids))]


async def release_holds_for_order(
    conn: Conn, order_ids: Sequence[str], reason: str
) -> list[Redemption]:
    """Give the orders' redemption points back (the order was cancelled).

    held -> released and captured -> refunded, each with one `reverse` entry
    of +points (key `redemption:{id}:reverse`, so it is posted once at
    most). Already released, refunded or expired redemptions are left alone.
    Returns the redemptions changed now (their customers' caches are stale).
    """
    if not order_ids:
        return []
    changed = [row_to_redemption(r) for r in await conn.fetch(RELEASE, list(order_ids))]
    await _refund(conn, changed, reason)
    return changed


async def release_redemption(conn: Conn, r: Redemption, reason: str) -> Redemption:
    """Release (held) or refund (captured) one locked redemption, with its `reverse` entry."""
    held = r.state is RedemptionState.HELD
    state = RedemptionState.RELEASED if held else RedemptionState.REFUNDED
    changed = await set_redemption_state(conn, r.id, state)
    await _refund(conn, [r], reason)
    return changed


async def expire_due_holds(conn: Conn, now: datetime, limit: int = 1000) -> list[Redemption]:
    """held -> expired for holds whose timeout passed, with their `reverse` entries.

    At most `limit` per call (oldest first); returns the redemptions expired.
    """
    accounts = sorted(r["account_id"] for r in await conn.fetch(DUE_HOLD_ACCOUNTS, now, limit))
    if not accounts:
        return []
    await conn.execute(LOCK_ACCOUNTS, accounts)
    rows = await conn.fetch(EXPIRE_DUE, now, limit, accounts)
    changed = [row_to_redemption(r) for r in rows]
    # The refund (and the debts it pays) moves only these accounts, locked above.
    await _refund(conn, changed, "hold timed out")
    return changed


async def end_pending_for_orders(conn: Conn, order_ids: Sequence[str]) -> list[uuid.UUID]:
    """Pending approvals of orders that finished -> expired; the customers who asked."""
    if not order_ids:
        return []
    return [r["customer_id"] for r in await conn.fetch(END_PENDING_FOR_ORDERS, list(order_ids))]
