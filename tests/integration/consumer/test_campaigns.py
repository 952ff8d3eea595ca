"""Completed orders earn campaign points at the order's own time, within the budget, once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from customer_core.context import Context
from customer_core.db import campaigns as campaigns_db
from customer_core.domain.campaign_spec import campaign_from_spec
from customer_core.domain.order_events import Cancelled, Completed, Item, OrderEvent, Placed, Topic
from customer_core.usecases.events import Incoming, apply_batch
from tests.integration.consumer.conftest import make_customers

START = datetime(2025, 7, 1, tzinfo=UTC)
ITEMS = (Item("iced-oat-latte", "Iced Oat Latte", "large", 1, 1000),)


async def add_campaign(ctx: Context, budget_per_customer: int) -> uuid.UUID:
    spec = {
        "displayName": "Double July",
        "window": {"start": "2025-07-01T00:00:00Z", "end": "2025-08-01T00:00:00Z"},
        "effect": {"multiplier": 2, "bonusPoints": 5},
        "budget": {"perCustomerPoints": budget_per_customer},
    }
    cid = uuid.uuid4()
    campaign = campaign_from_spec("default/double-july", spec, id=cid)
    async with ctx.pool.acquire() as conn:
        await campaigns_db.insert_campaign(conn, "default", "double-july", campaign, spec)
    return cid


def order(customer: uuid.UUID, at: datetime, *, cancel: bool = False) -> list[Incoming]:
    oid = f"ord-{uuid.uuid4().hex[:10]}"

    def ev(topic: Topic, when: datetime, body: object) -> Incoming:
        e = OrderEvent(str(uuid.uuid4()), topic, when, customer, oid, 1, body)  # type: ignore[arg-type]
        return Incoming(e, topic.value, 0, 0)

    out = [
        ev(Topic.PLACED, at, Placed(ITEMS, "USD", 1000, 1000)),
        ev(Topic.COMPLETED, at + timedelta(minutes=3), Completed(1000, "USD", ITEMS)),
    ]
    if cancel:
        out.append(ev(Topic.CANCELLED, at + timedelta(minutes=9), Cancelled("refund")))
    return out


async def ledger(ctx: Context, customer: uuid.UUID) -> list[tuple]:
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT p.kind, p.source, p.points, p.campaign_id IS NOT NULL FROM loyalty_points p "
            "JOIN loyalty_accounts a ON a.id = p.account_id WHERE a.customer_id = $1 "
            "ORDER BY p.id",
            customer,
        )
    return [tuple(r) for r in rows]


async def test_campaign_points_follow_the_orders_time_and_the_budget(ctx: Context):
    await add_campaign(ctx, budget_per_customer=150)
    [alice] = await make_customers(ctx, 1)
    # Before the window (processed now, long after): base points only.
    await apply_batch(ctx, order(alice, START - timedelta(days=1)))
    # Inside the window: base 100 + campaign 100*(2-1) + 5.
    await apply_batch(ctx, order(alice, START + timedelta(days=2)))
    # Inside again, but only 45 of the per-customer budget is left.
    await apply_batch(ctx, order(alice, START + timedelta(days=3)))
    assert await ledger(ctx, alice) == [
        ("earn", "order", 100, False),
        ("earn", "order", 100, False),
        ("earn", "campaign", 105, True),
        ("earn", "order", 100, False),
        ("earn", "campaign", 45, True),
    ]


async def test_a_cancelled_order_gives_back_its_campaign_points_too(ctx: Context):
    await add_campaign(ctx, budget_per_customer=1000)
    [bob] = await make_customers(ctx, 1)
    events = order(bob, START + timedelta(days=5), cancel=True)
    # Cancellation first, then the rest: still earned and reversed, once.
    await apply_batch(ctx, events[2:])
    await apply_batch(ctx, events[:2])
    await apply_batch(ctx, events)  # a replay changes nothing
    rows = await ledger(ctx, bob)
    assert sorted(rows) == sorted(
        [
            ("earn", "order", 100, False),
            ("earn", "campaign", 105, True),
            ("reverse", "order", -100, False),
            ("reverse", "campaign", -105, True),
        ]
    )
