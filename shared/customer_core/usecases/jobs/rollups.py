"""Stats roll-ups, incremental from a watermark on order_history.update_time."""

from __future__ import annotations

from datetime import datetime

from customer_core.context import Context
from customer_core.db import jobs as jobs_db
from customer_core.db import rollups as db
from customer_core.domain.jobs import ROLLUPS, JobOutcome, JobPolicy


async def roll_up(ctx: Context, policy: JobPolicy, now: datetime) -> JobOutcome:
    """Recompute every period touched since the last run, then move the watermark.

    One transaction: the periods and the watermark move together, so a failed
    run leaves both as they were and the next run redoes the window.
    """
    async with ctx.pool.acquire() as conn, conn.transaction():
        mark = await jobs_db.get_watermark(conn, ROLLUPS)
        start = policy.rollup_from(mark)
        end = await db.window_end(conn, start)
        keys = await db.collect_keys(conn, start, end)
        if keys:
            await db.recompute(conn)
        if mark is None or end > mark:
            await jobs_db.set_watermark(conn, ROLLUPS, end)
    return JobOutcome(keys, f"{keys} customer-days recomputed up to {end.isoformat()}")
