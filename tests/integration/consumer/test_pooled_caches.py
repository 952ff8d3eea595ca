"""Caches follow the wallet: a pooled balance that changes is fresh for every member at once.

Each member's GetOrderContext is cached; when the consumer (or the holds job)
moves the family wallet's balance, every member's cached view must go, not
only the view of the member whose order (or hold) it was. The same holds for a
cancellation whose reversal follows unpooling into another member's own account.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from customer_consumer.settings import ConsumerSettings
from customer_core.context import Context
from customer_core.domain.jobs import JobPolicy
from customer_core.domain.order_events import Cancelled, Completed, OrderEvent, Topic
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases import wallet
from customer_core.usecases.jobs.holds import release_holds
from tests.integration.consumer.conftest import Running, eventually, make_customers, send
from tests.integration.wallet.conftest import FREE_COFFEE, complete_order
from tests.support.ledger import give

Stub = customer_pb2_grpc.CustomerServiceStub


async def balance_seen(api: Stub, cid: uuid.UUID) -> int:
    got = await api.GetOrderContext(pb.GetOrderContextRequest(customer=f"customers/{cid}"))
    return got.points_balance


async def test_an_earning_through_the_consumer_is_fresh_for_every_member(
    ctx: Context,
    api: Stub,
    producer: AIOKafkaProducer,
    cset: ConsumerSettings,
    start_consumer: Callable[..., Awaitable[Running]],
) -> None:
    members = await make_customers(ctx, 3, pooled=True)
    await give(ctx, members[0], 40)
    for m in members:  # cached now
        assert await balance_seen(api, m) == 40
    await start_consumer()
    event = OrderEvent(
        str(uuid.uuid4()),
        Topic.COMPLETED,
        datetime.now(UTC),
        members[0],
        f"ord-{uuid.uuid4().hex[:10]}",
        1,
        Completed(1000, "USD"),
    )
    await send(producer, cset, [event])

    async def earned() -> bool:
        return await balance_seen(api, members[0]) == 140

    await eventually(earned, what="the earning member's balance")
    # The moment the earner's view is fresh, so is every other member's.
    assert [await balance_seen(api, m) for m in members[1:]] == [140, 140]


async def test_an_expired_hold_is_fresh_for_every_member(ctx: Context, api: Stub) -> None:
    members = await make_customers(ctx, 3, pooled=True)
    await give(ctx, members[0], 300)
    await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=f"customers/{members[0]}",
            reward=f"rewards/{FREE_COFFEE}",
            order_id="o-1",
            idempotency_key="k-hold",
        )
    )
    for m in members:
        assert await balance_seen(api, m) == 200

    later = datetime.now(UTC) + timedelta(seconds=ctx.settings.loyalty.hold_seconds + 60)
    outcome = await release_holds(ctx, JobPolicy(batch_size=7), later)

    assert outcome.rows == 1
    assert [await balance_seen(api, m) for m in members] == [300, 300, 300]


@dataclass(frozen=True)
class Family:
    id: uuid.UUID
    owner: uuid.UUID
    adult: uuid.UUID


async def owner_and_adult(ctx: Context) -> Family:
    """A family not pooled, its owner the longest-standing member."""
    fam = Family(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    async with ctx.pool.acquire() as conn:
        await conn.execute("INSERT INTO families (id, display_name) VALUES ($1, 'F')", fam.id)
        for cid, role in ((fam.owner, "owner"), (fam.adult, "adult")):
            await conn.execute(
                "INSERT INTO customers (id, family_id, username, display_name, role)"
                " VALUES ($1, $2, $3, 'M', $4)",
                cid,
                fam.id,
                f"u{cid.hex[:12]}",
                role,
            )
    return fam


async def test_a_reversal_from_another_members_account_is_fresh_for_that_member(
    ctx: Context,
    api: Stub,
    producer: AIOKafkaProducer,
    cset: ConsumerSettings,
    start_consumer: Callable[..., Awaitable[Running]],
) -> None:
    fam = await owner_and_adult(ctx)
    await give(ctx, fam.owner, 400)
    await wallet.set_wallet(ctx, fam.id, True, fam.owner, "")
    oid = await complete_order(ctx, fam.adult, 5000)  # 500 into the wallet
    await wallet.set_wallet(ctx, fam.id, False, fam.owner, "")
    await give(ctx, fam.adult, -300)  # the adult spent 300 of their 500
    seen = [await balance_seen(api, m) for m in (fam.owner, fam.adult)]  # cached now
    assert seen == [400, 200]
    await start_consumer()
    cancel = OrderEvent(
        str(uuid.uuid4()),
        Topic.CANCELLED,
        datetime.now(UTC),
        fam.adult,
        oid,
        1,
        Cancelled("refund"),
    )
    await send(producer, cset, [cancel])

    async def reversed_() -> bool:
        return await balance_seen(api, fam.adult) == 0

    await eventually(reversed_, what="the cancelling member's balance")
    # The other 300 came out of the owner's own account: the owner's view is fresh too.
    assert await balance_seen(api, fam.owner) == 100
