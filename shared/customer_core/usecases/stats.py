"""Customer statistics: one read for GetCustomerStats, batched reads for live watchers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from customer_core.context import Context
from customer_core.db.families import family_exists
from customer_core.db.stats import customer_exists, fetch_snapshots
from customer_core.domain.streams import StatsSnapshot
from customer_core.errors import NotFound
from customer_core.telemetry import timed_query


async def get_stats(ctx: Context, customer_id: uuid.UUID) -> StatsSnapshot:
    """The customer's statistics, balance and tier now; NotFound for an unknown customer."""
    async with ctx.pool.acquire() as conn:
        with timed_query("stats.get"):
            found = await fetch_snapshots(conn, [customer_id])
    snapshot = found.get(customer_id)
    if snapshot is None:
        raise NotFound(f"customers/{customer_id}")
    return snapshot


async def read_many(
    ctx: Context, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StatsSnapshot]:
    """Snapshots for several customers in one query (live watchers refresh in bulk)."""
    async with ctx.pool.acquire() as conn:
        with timed_query("stats.read_many"):
            return await fetch_snapshots(conn, customer_ids)


async def ensure_feed_target(
    ctx: Context, *, customer_id: uuid.UUID | None = None, family_id: uuid.UUID | None = None
) -> None:
    """NotFound unless the customer (live or deleted: its history stays) or family exists."""
    async with ctx.pool.acquire() as conn:
        if customer_id is not None:
            if not await customer_exists(conn, customer_id):
                raise NotFound(f"customers/{customer_id}")
        elif family_id is not None and not await family_exists(conn, family_id):
            raise NotFound(f"families/{family_id}")
