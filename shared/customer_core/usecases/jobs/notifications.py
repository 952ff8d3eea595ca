"""Reward notifications: record who became eligible, then publish the outbox.

Recording is one set-based statement per reason; the unique (customer,
reason, subject) key makes the same eligibility notify once, however often
the job runs. Publishing is at least once: a row is marked published after
the broker acknowledged it, so a crash in between re-sends it (consumers
deduplicate on notification_id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from customer_core.context import Context
from customer_core.db import notifications as db
from customer_core.domain.jobs import JobOutcome, JobPolicy
from customer_core.domain.notifications import Notification

Publish = Callable[[Sequence[Notification]], Awaitable[None]]


async def record(ctx: Context, policy: JobPolicy, now: datetime) -> tuple[int, int, int]:
    """New notifications by reason: (rewards available, tiers reached, points expiring)."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        rewards = await db.record_rewards_available(conn, now)
        tiers = await db.record_tiers_reached(conn)
        expiring = await db.record_points_expiring(
            conn, policy.warning_cutoff(now), policy.expiry_cutoff(now), policy.expiry_days
        )
    return rewards, tiers, expiring


async def publish_pending(ctx: Context, policy: JobPolicy, publish: Publish) -> int:
    """Send unpublished notifications a batch at a time; returns how many were sent."""
    sent = 0
    while True:
        async with ctx.pool.acquire() as conn:
            batch = await db.pending(conn, policy.batch_size)
            if not batch:
                return sent
            await publish(batch)
            await db.mark_published(conn, [n.id for n in batch])
        sent += len(batch)
        if len(batch) < policy.batch_size:
            return sent


async def notify(ctx: Context, policy: JobPolicy, now: datetime, publish: Publish) -> JobOutcome:
    rewards, tiers, expiring = await record(ctx, policy, now)
    sent = await publish_pending(ctx, policy, publish)
    return JobOutcome(
        sent,
        f"recorded {rewards} reward, {tiers} tier, {expiring} expiry notifications; "
        f"published {sent}",
    )
