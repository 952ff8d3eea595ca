"""What a quote and a redemption check: the customer, the reward, the account
(spent from), its tier window, the order's state and redemptions, and the key;
each case the one-statement reads (db/reward_checks.py) must get right."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import grpc

from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from tests.integration.loyalty.conftest import NewCustomer, family_of
from tests.integration.loyalty.test_rewards import (
    FIVE_OFF,
    FREE_COFFEE,
    Stub,
    account,
    code_of,
    redeem,
)
from tests.support.ledger import earn, give


def quote(
    api: Stub, cid: uuid.UUID, reward: str = FREE_COFFEE, order: str = "o-1"
) -> Awaitable[pb.QuoteRedemptionResponse]:
    return api.QuoteRedemption(
        pb.QuoteRedemptionRequest(customer=f"customers/{cid}", reward=reward, order_id=order)
    )


async def test_unknown_and_deleted_customers_are_not_found(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    nobody = uuid.uuid4()
    code, details = await code_of(quote(api, nobody))
    assert code == grpc.StatusCode.NOT_FOUND and str(nobody) in details
    gone = await new_customer()
    await earn(ctx, gone, 500)
    async with ctx.pool.acquire() as conn:
        await conn.execute("UPDATE customers SET deleted_at = now() WHERE id = $1", gone)
    code, details = await code_of(quote(api, gone))
    assert code == grpc.StatusCode.NOT_FOUND and str(gone) in details
    # The customer is checked before the reward: an unknown reward for an unknown
    # customer names the customer.
    code, details = await code_of(quote(api, nobody, f"rewards/{uuid.uuid4()}"))
    assert code == grpc.StatusCode.NOT_FOUND and str(nobody) in details


async def test_a_customer_without_an_account_yet_has_nothing_to_spend(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    fresh = await quote(api, cid)
    assert (fresh.redeemable, fresh.reason) == (False, pb.INELIGIBLE_REASON_INSUFFICIENT_POINTS)
    assert (fresh.balance_before, fresh.balance_after) == (0, 0)
    await earn(ctx, cid, 150)  # into the account the quote may have created
    assert (await quote(api, cid)).balance_after == 50


async def test_the_tier_counts_only_points_inside_the_window(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    await earn(ctx, cid, 10)
    async with ctx.pool.acquire() as conn:
        # 1,600 points earned 400 days ago (the window is 365): spendable, not gold.
        account = await conn.fetchval("SELECT id FROM loyalty_accounts WHERE customer_id = $1", cid)
        await conn.execute(
            "INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,"
            " idempotency_key, create_time)"
            " VALUES ($1, $2, 'earn', 1600, 'order', 'order', $3, now() - interval '400 days')",
            account,
            cid,
            f"old-{cid}",
        )
        await conn.execute(
            "UPDATE loyalty_accounts SET balance = balance + 1600,"
            " lifetime_points = lifetime_points + 1600 WHERE id = $1",
            account,
        )
    old = await quote(api, cid, FIVE_OFF)
    assert (old.redeemable, old.reason) == (False, pb.INELIGIBLE_REASON_TIER_TOO_LOW)
    assert old.balance_before == 1610
    await give(ctx, cid, -20)  # an operator's correction counts against the tier too
    await earn(ctx, cid, 1500)
    assert not (await quote(api, cid, FIVE_OFF)).redeemable  # 1,490 in the window
    await earn(ctx, cid, 10)
    gold = await quote(api, cid, FIVE_OFF)
    assert (gold.redeemable, gold.balance_before, gold.balance_after) == (True, 3100, 2700)


async def test_a_pooled_member_quotes_the_familys_wallet_and_orders(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    first = await new_customer(pooled=True)
    family = await family_of(ctx, first)
    second = await new_customer(family_id=family)
    await earn(ctx, first, 300)
    pooled = await quote(api, second)
    assert (pooled.redeemable, pooled.balance_before, pooled.balance_after) == (True, 300, 200)
    await api.RedeemReward(redeem(first, "o-1", "k-1"))
    taken = await quote(api, second)
    assert (taken.redeemable, taken.reason) == (
        False,
        pb.INELIGIBLE_REASON_ALREADY_REDEEMED_FOR_ORDER,
    )
    assert taken.balance_before == 200
    # Another family's customer may quote the same order id: it tells them nothing.
    stranger = await new_customer()
    await earn(ctx, stranger, 300)
    assert (await quote(api, stranger)).redeemable


async def finish_order(ctx: Context, cid: uuid.UUID, order: str, column: str) -> None:
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO order_history (order_id, customer_id, placed_at,"
            f" {column}) VALUES ($1, $2, now(), now())",
            order,
            cid,
        )


async def test_a_redemption_checks_the_order_the_tier_and_the_key(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    await earn(ctx, cid, 1000)
    code, details = await code_of(api.RedeemReward(redeem(cid, "o-1", "k-1", FIVE_OFF)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "needs tier" in details
    for column, state in (("completed_at", "completed"), ("cancelled_at", "cancelled")):
        order = f"o-{state}"
        await finish_order(ctx, cid, order, column)
        code, details = await code_of(api.RedeemReward(redeem(cid, order, f"k-{state}")))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert f"order {order!r} is already {state}" in details
    first = await api.RedeemReward(redeem(cid, "o-2", "k-2"))
    assert await api.RedeemReward(redeem(cid, "o-2", "k-2")) == first  # a replay
    code, details = await code_of(api.RedeemReward(redeem(cid, "o-3", "k-2")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "'k-2' was already used" in details
    code, details = await code_of(api.RedeemReward(redeem(cid, "o-2", "k-4")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "already has a reward" in details
    # Another family's redemption takes the order too: redeeming counts every family's.
    stranger = await new_customer()
    await earn(ctx, stranger, 300)
    code, details = await code_of(api.RedeemReward(redeem(stranger, "o-2", "k-5")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "already has a reward" in details
    assert (await account(api, cid)).balance == 900
    assert (await account(api, stranger)).balance == 300


async def test_a_redemption_by_nobody_for_nothing_or_with_no_account_yet(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    nobody = uuid.uuid4()
    code, details = await code_of(api.RedeemReward(redeem(nobody, "o-1", "k-1")))
    assert code == grpc.StatusCode.NOT_FOUND and str(nobody) in details
    cid = await new_customer()  # no account until something needs it
    unknown = f"rewards/{uuid.uuid4()}"
    code, details = await code_of(api.RedeemReward(redeem(cid, "o-1", "k-2", unknown)))
    assert code == grpc.StatusCode.NOT_FOUND and unknown.split("/")[1] in details
    code, details = await code_of(api.RedeemReward(redeem(cid, "o-1", "k-3")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "the balance is 0" in details
    await earn(ctx, cid, 100)
    done = await api.RedeemReward(redeem(cid, "o-1", "k-4"))
    assert (done.redemption.points, done.balance_after) == (100, 0)
    async with ctx.pool.acquire() as conn:
        await conn.execute("UPDATE customers SET deleted_at = now() WHERE id = $1", cid)
    code, details = await code_of(api.RedeemReward(redeem(cid, "o-2", "k-5")))
    assert code == grpc.StatusCode.NOT_FOUND and str(cid) in details
