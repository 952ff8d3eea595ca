"""Two consumers applying batches at the same moment, as two group members do.

Members own different partitions of each topic, so one order's events (placed
on one topic, completed on another) and one pooled wallet's members can be in
two batches applied at once. The end state must equal applying the same events
one batch after the other; contention (a deadlock, a serialisation failure)
may only cost a retry, as the consumer retries an Unavailable batch.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

from customer_core.context import Context
from customer_core.domain.order_events import Completed, Item, OrderEvent, Payment, Placed, Topic
from customer_core.errors import Unavailable
from customer_core.usecases.events import Incoming, apply_batch
from tests.integration.consumer.conftest import make_customers

AT = datetime(2025, 6, 2, 7, 45, tzinfo=UTC)
MEMBERS = 6
ROUNDS = 6


def order_events(customer_id: uuid.UUID, total: int, minutes: int) -> list[OrderEvent]:
    oid = f"ord-{uuid.uuid4().hex[:12]}"
    items = (Item("latte", "Latte", "medium", 1, total),)

    def ev(topic: Topic, later: int, body: object) -> OrderEvent:
        return OrderEvent(
            str(uuid.uuid4()),
            topic,
            AT + timedelta(minutes=minutes + later),
            customer_id,
            oid,
            1,
            body,
        )  # type: ignore[arg-type]

    return [
        ev(Topic.PLACED, 0, Placed(items, "USD", total, total)),
        ev(Topic.PAYMENT, 1, Payment(f"pay-{oid}", total, "USD", "card")),
        ev(Topic.COMPLETED, 3, Completed(total, "USD", items)),
    ]


async def apply_retrying(ctx: Context, batch: list[OrderEvent]) -> int:
    """Apply as the consumer does (an Unavailable batch is retried); returns the retries."""
    incoming = [Incoming(e, e.topic.value, 0, i) for i, e in enumerate(batch)]
    for attempt in range(20):
        try:
            result = await apply_batch(ctx, incoming)
        except Unavailable:
            await asyncio.sleep(0.05)
            continue
        assert not result.rejected, result.rejected
        return attempt
    raise AssertionError("a batch never got through")


WALLET = """
SELECT a.balance, a.lifetime_points FROM loyalty_accounts a
JOIN customers c ON c.family_id = a.family_id WHERE c.id = $1
"""
MEMBER = """
SELECT s.order_count, s.completed_count, s.payment_count, s.total_spent_minor,
       (SELECT count(*) FROM order_history h
        WHERE h.customer_id = s.customer_id AND h.completed_at IS NOT NULL) AS completed_orders,
       (SELECT coalesce(sum(p.points), 0) FROM loyalty_points p
        WHERE p.member_id = s.customer_id) AS points
FROM order_stats s WHERE s.customer_id = $1
"""


async def state(ctx: Context, members: list[uuid.UUID]) -> dict[str, object]:
    async with ctx.pool.acquire() as conn:
        wallet = await conn.fetchrow(WALLET, members[0])
        per_member = [await conn.fetchrow(MEMBER, cid) for cid in members]
    return {
        "wallet": dict(wallet) if wallet else None,
        "members": [dict(r) if r else None for r in per_member],
    }


async def test_two_batches_at_once_on_one_pooled_wallet_end_as_one_after_the_other(
    ctx: Context,
) -> None:
    rng = random.Random(7)
    together = await make_customers(ctx, MEMBERS, pooled=True)
    apart = await make_customers(ctx, MEMBERS, pooled=True)
    retries = 0
    for r in range(ROUNDS):
        first: list[OrderEvent] = []
        second: list[OrderEvent] = []
        alone: list[OrderEvent] = []
        for i in range(MEMBERS):
            total = rng.randrange(300, 2500)
            mine, twin = order_events(together[i], total, r), order_events(apart[i], total, r)
            alone += twin
            # Each event of the order lands in either batch: the placement and
            # the completion of one order are often applied at the same moment.
            for event in mine:
                (first if rng.random() < 0.5 else second).append(event)
        got = await asyncio.gather(apply_retrying(ctx, first), apply_retrying(ctx, second))
        retries += sum(got)
        assert await apply_retrying(ctx, alone) == 0
    expected = await state(ctx, apart)
    assert expected["wallet"] is not None  # the comparison is not of two empty states
    assert await state(ctx, together) == expected
    # Contention may cost a retry now and then, never a stuck consumer.
    assert retries < ROUNDS * 2
