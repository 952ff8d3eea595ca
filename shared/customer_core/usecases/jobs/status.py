"""What `jobs list` shows: the last run of each job."""

from __future__ import annotations

from customer_core.context import Context
from customer_core.db import jobs as db
from customer_core.db.jobs import RunRow


async def last_runs(ctx: Context) -> dict[str, RunRow]:
    async with ctx.pool.acquire() as conn:
        return await db.last_runs(conn)
