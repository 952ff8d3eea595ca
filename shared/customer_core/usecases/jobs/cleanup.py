"""Data clean-up: archive old history, prune the inbox and idempotency keys, purge
deleted customers.

Nothing statistics or the ledger need is lost: archived orders stay readable
through order_history_all (which the roll-ups read), the running order_stats
tables are never touched, the ledger keeps every amount (purging replaces only
an entry's free-text reason), and purging keeps ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from customer_core.context import Context
from customer_core.db import Conn, idempotency
from customer_core.db import cleanup as db
from customer_core.domain.jobs import JobOutcome, JobPolicy
from customer_core.usecases import erasure


async def _in_batches(ctx: Context, limit: int, step: Callable[[Conn], Awaitable[int]]) -> int:
    total = 0
    while True:
        async with ctx.pool.acquire() as conn, conn.transaction():
            done = await step(conn)
        total += done
        if done < limit:
            return total


async def clean_up(ctx: Context, policy: JobPolicy, now: datetime) -> JobOutcome:
    limit = policy.batch_size
    archived = await _in_batches(
        ctx, limit, lambda c: db.archive_history(c, policy.history_cutoff(now), limit)
    )
    pruned = await _in_batches(
        ctx, limit, lambda c: db.prune_inbox(c, policy.inbox_cutoff(now), limit)
    )
    # Idempotency records share the inbox's retention: a client retrying a
    # call after that long gets a fresh effect, as it would for an event.
    async with ctx.pool.acquire() as conn:
        forgotten = await idempotency.delete_older_than(conn, policy.inbox_cutoff(now))
    purged: list[tuple[uuid.UUID, uuid.UUID | None]] = []
    emptied: list[uuid.UUID] = []

    async def purge(conn: Conn) -> int:
        due = await db.purge_customers(conn, policy.purge_cutoff(now), limit)
        # The whole erasure again: whatever was written while the deletion committed.
        emptied.extend(await erasure.erase(conn, [cid for cid, _ in due]))
        purged.extend(due)
        return len(due)

    await _in_batches(ctx, limit, purge)
    if purged:
        await erasure.forget(ctx, purged, emptied)
    return JobOutcome(
        archived + pruned + forgotten + len(purged),
        f"archived {archived} orders, pruned {pruned} inbox rows and {forgotten} "
        f"idempotency keys, purged {len(purged)} deleted customers",
    )
