"""Release reward holds past their timeout (their points come back).

The one home of hold expiry: the scheduler's job and the tests both run it.
"""

from __future__ import annotations

from datetime import datetime

from customer_core import notices
from customer_core.context import Context
from customer_core.db.redemptions import expire_due_holds
from customer_core.domain.jobs import JobOutcome, JobPolicy
from customer_core.domain.rewards import Redemption
from customer_core.usecases import balances, wallet_approvals


def _reversed(r: Redemption) -> notices.Activity:
    return notices.Activity(
        kind="reward_reversed",
        customer_id=r.customer_id,
        order_id=r.order_id,
        points=r.points,
        reward_id=r.reward_id,
    )


async def release_holds(ctx: Context, policy: JobPolicy, now: datetime) -> JobOutcome:
    """Expire due holds a batch per transaction, then refresh the customers' views."""
    released = 0
    while True:
        async with ctx.pool.acquire() as conn, conn.transaction():
            batch = await expire_due_holds(conn, now, policy.batch_size)
            # Every member of a pooled wallet sees the points come back, not
            # only the member who redeemed.
            seen_by = await balances.viewers(conn, {r.account_id for r in batch})
        released += len(batch)
        await balances.refresh(ctx, seen_by, [_reversed(r) for r in batch])
        if len(batch) < policy.batch_size:
            # Children's redemptions nobody approved in time end the same way.
            lapsed = await wallet_approvals.expire_approvals(ctx, now, policy.batch_size)
            return JobOutcome(
                released + lapsed,
                f"released {released} expired holds, expired {lapsed} pending approvals",
            )
