"""No cross-family oracle: an app caller learns nothing about another family's
orders from QuoteRedemption, and GetCustomer by username reads the very
customer it checked."""

from __future__ import annotations

import uuid

import grpc
import pytest

from customer_api.security.tokens import APP, ORDER_SERVICE
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.security.conftest import Family, Serve, Signer
from tests.support.ledger import earn

FREE_COFFEE = "rewards/5eed0000-0000-4000-8000-000000000002"  # 100 points, seeded


async def test_a_quote_says_nothing_about_another_familys_orders(
    serve: Serve, signer: Signer, families: tuple[Family, Family], ctx: Context
) -> None:
    own, other = families
    for family in families:
        await earn(ctx, family.members[0], 500)
    running = await serve()
    orders = running.stub(signer.token(ORDER_SERVICE, "orders-1"))
    theirs, mine = f"order-{uuid.uuid4()}", f"order-{uuid.uuid4()}"
    for family, order in ((other, theirs), (own, mine)):
        await orders.RedeemReward(
            pb.RedeemRewardRequest(
                customer=family.member(0),
                reward=FREE_COFFEE,
                order_id=order,
                idempotency_key=f"k-{uuid.uuid4()}",
            )
        )
    app = running.stub(signer.token(APP, "family-app", own.id))

    def quote(order: str) -> object:
        return app.QuoteRedemption(
            pb.QuoteRedemptionRequest(customer=own.member(1), reward=FREE_COFFEE, order_id=order)
        )

    # Another family's order reads like any order nobody redeemed against ...
    unknown = await quote(f"order-{uuid.uuid4()}")  # type: ignore[misc]
    assert await quote(theirs) == unknown  # type: ignore[misc]
    # ... while the family's own order is still reported as taken.
    taken = await quote(mine)  # type: ignore[misc]
    assert not taken.redeemable
    assert taken.reason == pb.INELIGIBLE_REASON_ALREADY_REDEEMED_FOR_ORDER


async def test_get_customer_by_username_reads_the_customer_it_checked(
    serve: Serve, signer: Signer, families: tuple[Family, Family], ctx: Context
) -> None:
    own, other = families
    running = await serve()
    app = running.stub(signer.token(APP, "family-app", own.id))
    async with ctx.pool.acquire() as conn:
        mine = await conn.fetchval("SELECT username FROM customers WHERE id = $1", own.members[0])
        theirs = await conn.fetchval(
            "SELECT username FROM customers WHERE id = $1", other.members[0]
        )
    got = await app.GetCustomer(pb.GetCustomerRequest(username=mine))
    assert got.name == own.member(0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await app.GetCustomer(pb.GetCustomerRequest(username=theirs))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
