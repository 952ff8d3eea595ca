"""Order events on the real broker end in statistics, history and points."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from customer_consumer import demo_traffic
from customer_core.context import Context
from tests.integration.consumer.conftest import eventually, make_customers, send


async def test_an_order_flows_into_stats_history_and_points(
    ctx: Context, cset, producer, start_consumer
):
    [cid] = await make_customers(ctx, 1)
    rng = random.Random(7)
    events = demo_traffic.order_events(rng, cid, datetime(2025, 3, 3, 8, 30, tzinfo=UTC))
    await start_consumer()
    await send(producer, cset, events)

    async def done() -> bool:
        async with ctx.pool.acquire() as conn:
            n = await conn.fetchval("SELECT count(*) FROM processed_events")
        return n == len(events)

    await eventually(done, what="all events processed")
    async with ctx.pool.acquire() as conn:
        stats = await conn.fetchrow("SELECT * FROM order_stats WHERE customer_id = $1", cid)
        history = await conn.fetchrow("SELECT * FROM order_history WHERE customer_id = $1", cid)
    assert stats["order_count"] == 1
    print(dict(stats), dict(history))
