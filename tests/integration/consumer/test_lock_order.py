"""One global lock order: the consumer's batch and SetFamilyWallet never deadlock.

The cycle the review found: a batch releases member B's hold (locking B's
account), then earns for member A (wanting A's account), while SetFamilyWallet
locks the family's accounts in id order, A's before B's. A third transaction
holds A's account so that both are queued on it, SetFamilyWallet first; when it
lets go, a batch that took B's account early would close the cycle.

Its sibling: a cancellation's reversal follows pooling transfers to every account
of the family, so the batch's one upfront lock must already cover them; locking
them when the reversal runs would take A's after B's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from customer_consumer.settings import ConsumerSettings
from customer_core.context import Context, connect_db
from customer_core.domain.order_events import Cancelled, Completed, OrderEvent, Topic
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.consumer.conftest import Running, eventually, send
from tests.integration.wallet.conftest import FREE_COFFEE, complete_order
from tests.support.ledger import give

Stub = customer_pb2_grpc.CustomerServiceStub

WAITING = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


async def two_members_in_account_order(ctx: Context) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A family and its owner and adult, the owner's account id the lower one."""
    fid, ids = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    async with ctx.pool.acquire() as conn:
        await conn.execute("INSERT INTO families (id, display_name) VALUES ($1, 'F')", fid)
        for cid, role in zip(ids, ("owner", "adult"), strict=True):
            await conn.execute(
                "INSERT INTO customers (id, family_id, username, display_name, role)"
                " VALUES ($1, $2, $3, 'M', $4)",
                cid,
                fid,
                f"u{cid.hex[:12]}",
                role,
            )
    for cid in ids:
        await give(ctx, cid, 300)
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT customer_id FROM loyalty_accounts WHERE customer_id = ANY($1::uuid[])"
            " ORDER BY id",
            ids,
        )
    first, second = (r["customer_id"] for r in rows)
    return fid, first, second


async def deadlocks(ctx: Context) -> int:
    async with ctx.pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await conn.fetchval(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            )
        )


def waiting(ctx: Context, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        # Not on the blocker: a transaction sees one snapshot of pg_stat_activity.
        async with ctx.pool.acquire() as conn:
            return int(await conn.fetchval(WAITING)) >= n

    return check


async def switch_and_batch_queued_on(
    ctx: Context,
    api: Stub,
    fid: uuid.UUID,
    a: uuid.UUID,
    key: str,
    start_consumer: Callable[..., Awaitable[Running]],
) -> None:
    """Hold A's account, queue SetFamilyWallet then the consumer's batch behind it, let go.

    Returns when the switch has answered: neither INTERNAL nor ABORTED, so
    nothing had to be retried.
    """
    blocker = await connect_db(ctx.settings)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM loyalty_accounts WHERE customer_id = $1 FOR UPDATE", a)
        # Unpooling a family that is not pooled changes nothing but locks every account.
        switch = asyncio.ensure_future(
            api.SetFamilyWallet(
                pb.SetFamilyWalletRequest(
                    family=f"families/{fid}",
                    pooled=False,
                    requested_by=f"customers/{a}",
                    idempotency_key=key,
                )
            )
        )
        await eventually(waiting(ctx, 1), what="SetFamilyWallet queued on A's account")
        await start_consumer()
        await eventually(waiting(ctx, 2), what="the batch queued on A's account")
        await tx.commit()
    finally:
        await blocker.close()
    await switch


async def test_the_consumer_and_set_family_wallet_never_deadlock(
    ctx: Context,
    api: Stub,
    producer: AIOKafkaProducer,
    cset: ConsumerSettings,
    start_consumer: Callable[..., Awaitable[Running]],
) -> None:
    fid, a, b = await two_members_in_account_order(ctx)
    held = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=f"customers/{b}",
            reward=f"rewards/{FREE_COFFEE}",
            order_id="o-b",
            idempotency_key="k-b",
        )
    )
    assert await deadlocks(ctx) == 0
    now = datetime.now(UTC)
    batch = [
        OrderEvent(str(uuid.uuid4()), Topic.CANCELLED, now, b, "o-b", 1, Cancelled("changed")),
        OrderEvent(str(uuid.uuid4()), Topic.COMPLETED, now, a, "o-a", 1, Completed(1000, "USD")),
    ]
    await send(producer, cset, batch)

    await switch_and_batch_queued_on(ctx, api, fid, a, "k-switch", start_consumer)

    async def applied() -> bool:
        async with ctx.pool.acquire() as conn:
            state = await conn.fetchval(
                "SELECT state FROM redemptions WHERE id = $1",
                uuid.UUID(held.redemption.name.split("/")[1]),
            )
            earned = await conn.fetchval(
                "SELECT count(*) FROM loyalty_points WHERE idempotency_key = 'order:o-a:earn'"
            )
        return bool(state == "released" and earned == 1)

    await eventually(applied, what="the batch applied")
    await asyncio.sleep(2)  # a backend reports its statistics within a second of idling
    assert await deadlocks(ctx) == 0


async def test_a_reversal_that_follows_transfers_takes_its_accounts_in_the_global_order(
    ctx: Context,
    api: Stub,
    producer: AIOKafkaProducer,
    cset: ConsumerSettings,
    start_consumer: Callable[..., Awaitable[Running]],
) -> None:
    fid, a, b = await two_members_in_account_order(ctx)
    # B (the higher account) earned on an order; its cancellation may take the points
    # back from any account of the family, A's included.
    oid = await complete_order(ctx, b, 5000)
    assert await deadlocks(ctx) == 0
    cancel = OrderEvent(
        str(uuid.uuid4()), Topic.CANCELLED, datetime.now(UTC), b, oid, 1, Cancelled("changed")
    )
    await send(producer, cset, [cancel])

    await switch_and_batch_queued_on(ctx, api, fid, a, "k-switch-reverse", start_consumer)

    async def reversed_() -> bool:
        async with ctx.pool.acquire() as conn:
            taken = await conn.fetchval(
                "SELECT coalesce(sum(points), 0) FROM loyalty_points"
                " WHERE source_ref = $1 AND kind = 'reverse'",
                oid,
            )
            left = await conn.fetchval(
                "SELECT balance FROM loyalty_accounts WHERE customer_id = $1", b
            )
        return bool(taken == -500 and left == 300)

    await eventually(reversed_, what="the cancellation reversed")
    await asyncio.sleep(2)  # a backend reports its statistics within a second of idling
    assert await deadlocks(ctx) == 0
