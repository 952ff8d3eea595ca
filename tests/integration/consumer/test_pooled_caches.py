"""Caches follow the wallet: a pooled balance that changes is fresh for every member at once.

Each member's GetOrderContext is cached; when the consumer (or the holds job)
moves the family wallet's balance, every member's cached view must go, not
only the view of the member whose order (or hold) it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from customer_consumer.settings import ConsumerSettings
from customer_core.context import Context
from customer_core.domain.jobs import JobPolicy
from customer_core.domain.orders import Completed, OrderEvent, Topic
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases.jobs.holds import release_holds
from tests.integration.consumer.conftest import Running, eventually, make_customers, send
from tests.integration.wallet.conftest import FREE_COFFEE, give

Stub = customer_pb2_grpc.CustomerServiceStub


async def balance_seen(api: Stub, cid: uuid.UUID) -> int:
    got = await api.GetOrderContext(pb.GetOrderContextRequest(customer=f"customers/{cid}"))
    return got.points_balance


async def test_an_earning_through_the_consumer_is_fresh_for_every_member(
    ctx: Context, api: Stub, producer: AIOKafkaProducer, cset: ConsumerSettings,
    start_consumer: Callable[..., Awaitable[Running]],
) -> None:  # fmt: skip
    members = await make_customers(ctx, 3, pooled=True)
    await give(ctx, members[0], 40)
    for m in members:  # cached now
        assert await balance_seen(api, m) == 40
    await start_consumer()
    event = OrderEvent(str(uuid.uuid4()), Topic.COMPLETED, datetime.now(UTC), members[0],
                       f"ord-{uuid.uuid4().hex[:10]}", 1, Completed(1000, "USD"))  # fmt: skip
    await send(producer, cset, [event])

    async def earned() -> bool:
        return await balance_seen(api, members[0]) == 140

    await eventually(earned, what="the earning member's balance")
    # The moment the earner's view is fresh, so is every other member's.
    assert [await balance_seen(api, m) for m in members[1:]] == [140, 140]


async def test_an_expired_hold_is_fresh_for_every_member(ctx: Context, api: Stub) -> None:
    members = await make_customers(ctx, 3, pooled=True)
    await give(ctx, members[0], 300)
    await api.RedeemReward(pb.RedeemRewardRequest(
        customer=f"customers/{members[0]}", reward=f"rewards/{FREE_COFFEE}", order_id="o-1",
        idempotency_key="k-hold",
    ))  # fmt: skip
    for m in members:
        assert await balance_seen(api, m) == 200

    later = datetime.now(UTC) + timedelta(seconds=ctx.settings.loyalty.hold_seconds + 60)
    outcome = await release_holds(ctx, JobPolicy(batch_size=7), later)

    assert outcome.rows == 1
    assert [await balance_seen(api, m) for m in members] == [300, 300, 300]
