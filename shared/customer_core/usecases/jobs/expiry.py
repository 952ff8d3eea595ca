"""Point expiry after inactivity: one `expire` entry per inactive account.

Accounts are taken a chunk at a time (locked, keyset by id), and each chunk is
one `post_entries` statement in its own transaction, so a long run holds no
lock for long and a crash loses at most one chunk's work, which the next run
redoes. The entry takes exactly the balance read under the lock, so a balance
never goes negative; its key `expire:{account}:{last activity}` makes a second
copy of the same expiry a no-op.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from customer_core.context import Context
from customer_core.db import expiry as db
from customer_core.db.loyalty import post_entries
from customer_core.domain.jobs import JobOutcome, JobPolicy
from customer_core.domain.loyalty import LedgerEntry

_FIRST = uuid.UUID(int=0)


def expire_entry(account: db.DueAccount) -> LedgerEntry:
    return LedgerEntry(
        account_id=account.id,
        member_id=account.customer_id,
        kind="expire",
        points=-account.balance,
        reason="points expired after inactivity",
        source="system",
        idempotency_key=f"expire:{account.id}:{account.active_at.isoformat()}",
    )


async def expire_points(ctx: Context, policy: JobPolicy, now: datetime) -> JobOutcome:
    cutoff = policy.expiry_cutoff(now)
    after, accounts, points = _FIRST, 0, 0
    while True:
        async with ctx.pool.acquire() as conn, conn.transaction():
            due = await db.lock_due(conn, after, cutoff, policy.batch_size)
            posted = await post_entries(conn, [expire_entry(a) for a in due])
        accounts += len(posted)
        points -= sum(e.points for e in posted)
        if len(due) < policy.batch_size:
            break
        after = due[-1].id
    if accounts:
        # Balances changed in bulk: one global bump beats a key per account.
        await ctx.cache.invalidate_all()
    return JobOutcome(accounts, f"expired {points} points in {accounts} accounts")
