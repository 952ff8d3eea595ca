"""Order events on the real broker end in statistics, history, points and live notices."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from customer_core.context import Context
from customer_core.domain.order_events import Completed, Item, OrderEvent, Payment, Placed, Topic
from customer_core.notices import Activity, customer_stream
from tests.integration.consumer.conftest import eventually, make_customers, send

AT = datetime(2025, 3, 3, 8, 30, tzinfo=UTC)  # a Monday, 08:30 UTC


def events_for(cid: uuid.UUID) -> list[OrderEvent]:
    items = (Item("flat-white", "Flat White", "large", 2, 550),)

    def ev(topic: Topic, seconds: int, body: object) -> OrderEvent:
        return OrderEvent(
            str(uuid.uuid4()), topic, AT.replace(second=seconds), cid, "ord-1", 1, body
        )  # type: ignore[arg-type]

    return [
        ev(Topic.PLACED, 0, Placed(items, "USD", 1100, 1100)),
        ev(Topic.PAYMENT, 5, Payment("pay-1", 1100, "USD", "card")),
        ev(Topic.COMPLETED, 40, Completed(1100, "USD", items)),
    ]


async def processed(ctx: Context) -> int:
    async with ctx.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM processed_events"))


async def test_an_order_flows_into_stats_history_points_and_notices(
    ctx: Context, cset, producer, start_consumer
):
    [cid] = await make_customers(ctx, 1)
    await start_consumer()
    await send(producer, cset, events_for(cid))

    async def all_done() -> bool:
        return await processed(ctx) == 3

    await eventually(all_done, what="all events processed")
    async with ctx.pool.acquire() as conn:
        stats = await conn.fetchrow("SELECT * FROM order_stats WHERE customer_id = $1", cid)
        history = await conn.fetchrow("SELECT * FROM order_history WHERE order_id = 'ord-1'")
        drinks = await conn.fetch("SELECT drink_id, count FROM order_stats_drinks")
        hours = await conn.fetch("SELECT hour_of_week, count FROM order_stats_hours")
        account = await conn.fetchrow(
            "SELECT balance, lifetime_points FROM loyalty_accounts WHERE customer_id = $1", cid
        )
    assert (stats["order_count"], stats["completed_count"], stats["cancelled_count"]) == (1, 1, 0)
    assert (stats["total_spent_minor"], stats["payment_count"]) == (1100, 1)
    assert stats["last_order_at"] == AT
    assert history["paid_minor"] == 1100
    assert history["points_earned"] == 110  # 11.00 USD at 10 points per unit
    assert [tuple(r) for r in drinks] == [("flat-white", 2)]
    assert [tuple(r) for r in hours] == [(8, 1)]
    assert tuple(account) == (110, 110)

    async def activities_logged() -> bool:
        entries = await ctx.valkey.xrange(customer_stream(cid))
        kinds = {Activity.from_fields(f).kind for _, f in entries}
        return {"order_placed", "order_completed", "points_earned"} <= kinds

    await eventually(activities_logged, within=30, what="activities on the customer's stream")


async def test_demo_traffic_moves_statistics_and_points(ctx: Context, cenv, start_consumer):
    await make_customers(ctx, 3)
    await start_consumer()
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "customer_launcher",
        "consumer",
        "demo-traffic",
        "--rate",
        "25",
        "--count",
        "120",
        env=cenv,
        stderr=subprocess.DEVNULL,
    )
    assert await asyncio.wait_for(demo.wait(), 120) == 0

    async def moved() -> bool:
        async with ctx.pool.acquire() as conn:
            orders = await conn.fetchval("SELECT coalesce(sum(order_count), 0) FROM order_stats")
            points = await conn.fetchval("SELECT coalesce(sum(balance), 0) FROM loyalty_accounts")
        return orders > 0 and points > 0 and await processed(ctx) == 120

    await eventually(moved, what="demo orders in statistics and points")
