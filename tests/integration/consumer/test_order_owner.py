"""An order belongs to the customer whose event created it: another customer's
event for the same order id is rejected, and changes nothing of either.

Two consumers can apply such events at the same moment (customers are in
different partitions): the second customer's batch does not see the first's
order before it commits, and its write of the "new" order meets the first's
row only at the upsert.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from customer_core.context import Context
from customer_core.domain.order_events import Completed, Item, OrderEvent, Placed, Topic
from customer_core.errors import Unavailable
from customer_core.usecases.events import BatchResult, Incoming, apply_batch, apply_events
from tests.integration.consumer.conftest import make_customers

AT = datetime(2025, 6, 2, 7, 45, tzinfo=UTC)
ITEMS = (Item("latte", "Latte", "medium", 1, 500),)


def placed(customer: uuid.UUID, order_id: str) -> Incoming:
    ev = OrderEvent(
        str(uuid.uuid4()), Topic.PLACED, AT, customer, order_id, 1, Placed(ITEMS, "USD", 500, 500)
    )
    return Incoming(ev, ev.topic.value, 0, 1)


def completed(customer: uuid.UUID, order_id: str) -> Incoming:
    ev = OrderEvent(
        str(uuid.uuid4()),
        Topic.COMPLETED,
        AT + timedelta(minutes=5),
        customer,
        order_id,
        1,
        Completed(500, "USD", ITEMS),
    )
    return Incoming(ev, ev.topic.value, 1, 1)


async def apply_as_the_consumer_does(ctx: Context, batch: list[Incoming]) -> BatchResult:
    """An Unavailable batch (an outage, or contention with another writer) is retried."""
    for _ in range(50):
        try:
            return await apply_batch(ctx, batch)
        except Unavailable:
            await asyncio.sleep(0.05)
    raise AssertionError("the batch never got through")


async def what_b_got(ctx: Context, order_id: str, b: uuid.UUID) -> tuple[object, ...]:
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT customer_id, placed_at, completed_at FROM order_history WHERE order_id = $1",
            order_id,
        )
        stats = await conn.fetchval(
            "SELECT coalesce(sum(completed_count), 0) FROM order_stats WHERE customer_id = $1", b
        )
        points = await conn.fetchval(
            "SELECT coalesce(sum(points), 0) FROM loyalty_points WHERE member_id = $1", b
        )
    assert row is not None
    return row["customer_id"], row["placed_at"], row["completed_at"], stats, points


async def test_another_customers_event_for_an_order_is_rejected(ctx: Context) -> None:
    a, b = await make_customers(ctx, 2)
    await apply_as_the_consumer_does(ctx, [placed(a, "ord-owned")])
    result = await apply_as_the_consumer_does(ctx, [completed(b, "ord-owned")])
    assert [r.reason for r in result.rejected] == [
        "order_id: order 'ord-owned' belongs to another customer"
    ]
    assert await what_b_got(ctx, "ord-owned", b) == (a, AT, None, 0, 0)


async def waiting_on_a_lock(ctx: Context, within: float = 10.0) -> None:
    """Until some session of this database waits for a row lock (the upsert, here)."""
    async with ctx.pool.acquire() as conn:
        for _ in range(int(within / 0.02)):
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("no session waited for a lock")


async def test_a_new_order_taken_by_a_concurrent_batch_of_another_customer_is_rejected(
    ctx: Context,
) -> None:
    a, b = await make_customers(ctx, 2)
    async with ctx.pool.acquire() as conn:
        first = conn.transaction()
        await first.start()
        # A's batch creates the order and has not committed when B's arrives.
        await apply_events(conn, ctx, [placed(a, "ord-raced")])
        second = asyncio.create_task(apply_as_the_consumer_does(ctx, [completed(b, "ord-raced")]))
        await waiting_on_a_lock(ctx)
        await first.commit()
    result = await asyncio.wait_for(second, 30)
    assert [r.reason for r in result.rejected] == [
        "order_id: order 'ord-raced' belongs to another customer"
    ]
    assert result.applied == []
    # The order is A's as A placed it; B completed nothing and earned nothing.
    assert await what_b_got(ctx, "ord-raced", b) == (a, AT, None, 0, 0)
