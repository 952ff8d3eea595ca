"""The Order Service's hot path: cached, and never stale after a write."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.loyalty.conftest import NewCustomer, family_of

Stub = customer_pb2_grpc.CustomerServiceStub


@contextlib.asynccontextmanager
async def readers_refilling(read: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
    """Four readers calling `read` over and over, refilling the cache, while the body runs."""
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            await read()

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        yield
    finally:
        stop.set()
        for task in readers:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await task


async def context_of(api: Stub, cid: uuid.UUID) -> pb.OrderContext:
    return await api.GetOrderContext(pb.GetOrderContextRequest(customer=f"customers/{cid}"))


async def validate(api: Stub, cid: uuid.UUID) -> pb.ValidateCustomerResponse:
    return await api.ValidateCustomer(pb.ValidateCustomerRequest(customer=f"customers/{cid}"))


async def adjust(api: Stub, cid: uuid.UUID, points: int) -> None:
    await api.AdjustPoints(
        pb.AdjustPointsRequest(
            customer=f"customers/{cid}",
            points=points,
            reason="test",
            idempotency_key=str(uuid.uuid4()),
        )
    )


async def test_validate_customer_answers_without_errors(
    api: Stub, new_customer: NewCustomer
) -> None:
    cid = await new_customer(dietary=("vegan", "nut_free"), role="child")
    ok = await validate(api, cid)
    assert ok.valid and ok.display_name == "Ada" and ok.role == pb.FAMILY_ROLE_CHILD
    assert ok.family.startswith("families/")
    assert set(ok.dietary.restrictions) == {
        pb.DIETARY_RESTRICTION_VEGAN,
        pb.DIETARY_RESTRICTION_NUT_FREE,
    }
    unknown = await validate(api, uuid.uuid4())
    assert (unknown.valid, unknown.invalid_reason) == (
        False,
        pb.ValidateCustomerResponse.INVALID_REASON_NOT_FOUND,
    )
    await api.DeleteCustomer(pb.DeleteCustomerRequest(name=f"customers/{cid}"))
    gone = await validate(api, cid)
    assert (gone.valid, gone.invalid_reason) == (
        False,
        pb.ValidateCustomerResponse.INVALID_REASON_DELETED,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.ValidateCustomer(pb.ValidateCustomerRequest(customer="customers/42"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_order_context_in_one_round_trip(api: Stub, new_customer: NewCustomer) -> None:
    cid = await new_customer()
    empty = await context_of(api, cid)
    assert empty.customer.name == f"customers/{cid}" and not empty.HasField("usual_order")
    assert (empty.points_balance, empty.tier, list(empty.redeemable_rewards)) == (
        0,
        pb.TIER_GREEN,
        [],
    )
    fav = await api.AddFavorite(
        pb.AddFavoriteRequest(
            parent=f"customers/{cid}", favorite=pb.Favorite(drink_id="latte", drink_name="Latte")
        )
    )
    await api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=fav.name))
    await adjust(api, cid, 120)
    full = await context_of(api, cid)
    assert full.usual_order.name == fav.name and full.points_balance == 120
    assert [r.reward.points_cost for r in full.redeemable_rewards] == [25, 100]
    assert not any(r.requires_approval for r in full.redeemable_rewards)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await context_of(api, uuid.uuid4())
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_child_in_a_pooled_family_needs_approval(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    parent = await new_customer(pooled=True)
    family = await family_of(ctx, parent)
    child = await new_customer(family_id=family, role="child")
    assert (await context_of(api, child)).points_balance == 0  # warm
    # The parent's adjustment moves the shared wallet: the child's view follows.
    await adjust(api, parent, 30)
    seen = await context_of(api, child)
    assert seen.wallet_pooled and seen.points_balance == 30
    assert [r.requires_approval for r in seen.redeemable_rewards] == [True]


async def test_served_from_the_cache_when_warm(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    await context_of(api, cid)
    await validate(api, cid)
    # Behind the service's back (no cache bump): the warm cache still answers.
    async with ctx.pool.acquire() as conn:
        await conn.execute("UPDATE customers SET display_name = 'Changed' WHERE id = $1", cid)
    assert (await context_of(api, cid)).customer.display_name == "Ada"
    assert (await validate(api, cid)).display_name == "Ada"
    await ctx.cache.invalidate(cid)
    assert (await context_of(api, cid)).customer.display_name == "Changed"


async def test_no_stale_read_after_favorite_profile_or_balance_change(
    api: Stub, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    name = f"customers/{cid}"
    fav = await api.AddFavorite(
        pb.AddFavoriteRequest(
            parent=name, favorite=pb.Favorite(drink_id="mocha", drink_name="Mocha")
        )
    )
    await context_of(api, cid)
    await validate(api, cid)  # both warm

    await api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=fav.name))
    assert (await context_of(api, cid)).usual_order.drink_id == "mocha"
    await api.UpdateFavorite(
        pb.UpdateFavoriteRequest(
            favorite=pb.Favorite(name=fav.name, drink_name="Dark mocha"),
            update_mask=FieldMask(paths=["drink_name"]),
        )
    )
    assert (await context_of(api, cid)).usual_order.drink_name == "Dark mocha"
    await api.RemoveFavorite(pb.RemoveFavoriteRequest(name=fav.name))
    assert not (await context_of(api, cid)).HasField("usual_order")

    await api.UpdateCustomer(
        pb.UpdateCustomerRequest(
            customer=pb.Customer(name=name, display_name="Grace"),
            update_mask=FieldMask(paths=["display_name"]),
        )
    )
    assert (await context_of(api, cid)).customer.display_name == "Grace"
    assert (await validate(api, cid)).display_name == "Grace"

    await adjust(api, cid, 100)
    assert (await context_of(api, cid)).points_balance == 100
    done = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=name,
            reward="rewards/5eed0000-0000-4000-8000-000000000002",
            order_id="o-1",
            idempotency_key="k-1",
        )
    )
    assert (await context_of(api, cid)).points_balance == 0
    await api.ReverseRedemption(pb.ReverseRedemptionRequest(redemption=done.redemption.name))
    assert (await context_of(api, cid)).points_balance == 100


async def test_reads_racing_writes_never_leave_a_stale_value(
    api: Stub, new_customer: NewCustomer
) -> None:
    """Readers keep refilling the cache while balances change: after each write
    returns, the very next read shows it."""
    cid = await new_customer()
    async with readers_refilling(lambda: context_of(api, cid)):
        for expected in range(1, 16):
            await adjust(api, cid, 1)
            assert (await context_of(api, cid)).points_balance == expected


async def usual_of(api: Stub, cid: uuid.UUID) -> pb.Favorite:
    return await api.GetUsualOrder(pb.GetUsualOrderRequest(customer=f"customers/{cid}"))


async def add_usual(api: Stub, cid: uuid.UUID, drink: str) -> pb.Favorite:
    fav = await api.AddFavorite(
        pb.AddFavoriteRequest(
            parent=f"customers/{cid}", favorite=pb.Favorite(drink_id=drink, drink_name=drink)
        )
    )
    await api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=fav.name))
    return fav


async def test_the_usual_order_is_served_from_the_cache_when_warm(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    """'Order My Usual' is on the Order Service's hot path, like GetOrderContext."""
    cid = await new_customer()
    await add_usual(api, cid, "mocha")
    assert (await usual_of(api, cid)).drink_name == "mocha"
    # Behind the service's back (no cache bump): the warm cache still answers.
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "UPDATE favorites SET drink_name = 'Changed' WHERE customer_id = $1", cid
        )
    assert (await usual_of(api, cid)).drink_name == "mocha"
    await ctx.cache.invalidate(cid)
    assert (await usual_of(api, cid)).drink_name == "Changed"


async def test_the_usual_order_is_never_stale_after_a_write(
    api: Stub, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await usual_of(api, cid)  # none yet; a miss is not cached as an answer
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    mocha = await add_usual(api, cid, "mocha")
    assert (await usual_of(api, cid)).drink_id == "mocha"

    latte = await add_usual(api, cid, "latte")  # another usual: the first is not any more
    assert (await usual_of(api, cid)).name == latte.name
    await api.UpdateFavorite(
        pb.UpdateFavoriteRequest(
            favorite=pb.Favorite(name=latte.name, drink_name="Oat latte"),
            update_mask=FieldMask(paths=["drink_name"]),
        )
    )
    assert (await usual_of(api, cid)).drink_name == "Oat latte"
    await api.RemoveFavorite(pb.RemoveFavoriteRequest(name=latte.name))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await usual_of(api, cid)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    await api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=mocha.name))
    assert (await usual_of(api, cid)).name == mocha.name
    await api.DeleteCustomer(pb.DeleteCustomerRequest(name=f"customers/{cid}"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await usual_of(api, cid)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_usual_order_reads_racing_writes_never_leave_a_stale_value(
    api: Stub, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    fav = await add_usual(api, cid, "mocha")
    async with readers_refilling(lambda: usual_of(api, cid)):
        for n in range(1, 11):
            await api.UpdateFavorite(
                pb.UpdateFavoriteRequest(
                    favorite=pb.Favorite(name=fav.name, drink_name=f"mocha {n}"),
                    update_mask=FieldMask(paths=["drink_name"]),
                )
            )
            assert (await usual_of(api, cid)).drink_name == f"mocha {n}"
