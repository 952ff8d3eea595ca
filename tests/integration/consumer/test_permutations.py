"""Every arrival order of one order's events ends in the same state as the natural order."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from customer_core.context import Context
from customer_core.domain.order_events import (
    Cancelled,
    Completed,
    Item,
    OrderEvent,
    Payment,
    Placed,
    Topic,
)
from customer_core.usecases.events import Incoming, apply_batch
from tests.integration.consumer.conftest import make_customers

AT = datetime(2025, 6, 2, 7, 45, tzinfo=UTC)
ITEMS = (
    Item("flat-white", "Flat White", "medium", 2, 495),
    Item("cold-brew", "Cold Brew", "large", 1, 485),
)


def order(customer_id: uuid.UUID, *, cancel: bool) -> list[OrderEvent]:
    oid = f"ord-{uuid.uuid4().hex[:12]}"

    def ev(topic: Topic, minutes: int, body: object) -> OrderEvent:
        return OrderEvent(
            str(uuid.uuid4()), topic, AT + timedelta(minutes=minutes), customer_id, oid, 1, body
        )  # type: ignore[arg-type]

    events = [
        ev(Topic.PLACED, 0, Placed(ITEMS, "USD", 1475, 1475)),
        ev(Topic.PAYMENT, 1, Payment(f"pay-{oid}", 1475, "USD", "card")),
        # The completion's copy of the items differs: the placement's must win.
        ev(Topic.COMPLETED, 5, Completed(1475, "USD", ITEMS[:1])),
    ]
    if cancel:
        events.append(ev(Topic.CANCELLED, 9, Cancelled("barista spilled it")))
    return events


async def snapshot(ctx: Context, cid: uuid.UUID) -> dict[str, object]:
    """Everything the events decide for one customer, without ids and clocks."""
    async with ctx.pool.acquire() as conn:
        stats = await conn.fetchrow(
            "SELECT order_count, completed_count, cancelled_count, total_spent_minor, "
            "payment_count, currency_code, first_order_at, last_order_at "
            "FROM order_stats WHERE customer_id = $1",
            cid,
        )
        history = await conn.fetchrow(
            "SELECT placed_at, completed_at, cancelled_at, items, currency_code, total_minor, "
            "paid_minor, points_earned, cancel_reason FROM order_history WHERE customer_id = $1",
            cid,
        )
        drinks = await conn.fetch(
            "SELECT drink_id, count FROM order_stats_drinks WHERE customer_id = $1 ORDER BY 1", cid
        )
        hours = await conn.fetch(
            "SELECT hour_of_week, count FROM order_stats_hours WHERE customer_id = $1", cid
        )
        account = await conn.fetchrow(
            "SELECT balance, lifetime_points, tier FROM loyalty_accounts WHERE customer_id = $1",
            cid,
        )
        ledger = await conn.fetch(
            "SELECT p.kind, p.points, p.source FROM loyalty_points p "
            "JOIN loyalty_accounts a ON a.id = p.account_id WHERE a.customer_id = $1 "
            "ORDER BY 1, 2",
            cid,
        )
    return {
        "stats": dict(stats) if stats else None,
        "history": dict(history) if history else None,
        "drinks": [tuple(r) for r in drinks],
        "hours": [tuple(r) for r in hours],
        "account": dict(account) if account else None,
        "ledger": [tuple(r) for r in ledger],
    }


async def run_permutations(ctx: Context, cancel: bool, one_batch: bool) -> None:
    n_events = 4 if cancel else 3
    perms = list(itertools.permutations(range(n_events)))
    customers = await make_customers(ctx, len(perms) + 1)
    natural, *others = customers
    await apply_all(ctx, order(natural, cancel=cancel), one_batch=False)
    expected = await snapshot(ctx, natural)
    assert expected["stats"]["order_count"] == 1  # type: ignore[index]
    for cid, perm in zip(others, perms, strict=True):
        events = order(cid, cancel=cancel)
        await apply_all(ctx, [events[i] for i in perm], one_batch=one_batch)
        got = await snapshot(ctx, cid)
        assert got == expected, f"arrival order {perm} (one batch: {one_batch})"


async def apply_all(ctx: Context, events: list[OrderEvent], *, one_batch: bool) -> None:
    incoming = [Incoming(e, e.topic.value, 0, i) for i, e in enumerate(events)]
    batches = [incoming] if one_batch else [[i] for i in incoming]
    for batch in batches:
        result = await apply_batch(ctx, batch)
        assert not result.rejected


async def test_completed_orders_end_the_same_in_every_arrival_order(ctx: Context):
    await run_permutations(ctx, cancel=False, one_batch=False)


async def test_cancelled_orders_end_the_same_in_every_arrival_order(ctx: Context):
    await run_permutations(ctx, cancel=True, one_batch=False)


async def test_every_arrival_order_within_one_batch_ends_the_same(ctx: Context):
    await run_permutations(ctx, cancel=True, one_batch=True)


async def test_completed_then_cancelled_gives_back_exactly_what_was_earned(ctx: Context):
    [cid] = await make_customers(ctx, 1)
    events = order(cid, cancel=True)
    await apply_all(ctx, events[:3], one_batch=False)
    earned = await snapshot(ctx, cid)
    # 14.75 USD at 10 points per unit, rounded down.
    assert earned["account"] == {"balance": 147, "lifetime_points": 147, "tier": "green"}
    assert earned["history"]["points_earned"] == 147  # type: ignore[index]
    await apply_all(ctx, events[3:], one_batch=False)
    after = await snapshot(ctx, cid)
    assert after["account"]["balance"] == 0  # type: ignore[index]
    assert after["ledger"] == [("earn", 147, "order"), ("reverse", -147, "order")]
    assert after["history"]["points_earned"] == 0  # type: ignore[index]


async def test_replayed_events_and_new_ids_for_the_same_facts_change_nothing(ctx: Context):
    [cid] = await make_customers(ctx, 1)
    events = order(cid, cancel=False)
    await apply_all(ctx, events, one_batch=True)
    before = await snapshot(ctx, cid)
    # The same events again (a replay), and the same facts under new event ids
    # (a producer that retried with fresh ids): neither counts twice.
    result = await apply_batch(ctx, [Incoming(e, e.topic.value, 0, 9) for e in events])
    assert len(result.duplicates) == len(events)
    renamed = [replace(e, event_id=str(uuid.uuid4())) for e in events]
    await apply_all(ctx, renamed, one_batch=False)
    assert await snapshot(ctx, cid) == before
