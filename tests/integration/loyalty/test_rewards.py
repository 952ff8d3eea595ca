"""Accounts, the ledger, rewards and redemption holds through a real gRPC channel."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from customer_core.context import Context
from customer_core.domain.jobs import JobPolicy
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases.jobs.holds import release_holds
from tests.integration.loyalty.conftest import NewCustomer
from tests.support.ledger import earn

Stub = customer_pb2_grpc.CustomerServiceStub
CUSTOMIZATION = "rewards/5eed0000-0000-4000-8000-000000000001"  # 25 points
FREE_COFFEE = "rewards/5eed0000-0000-4000-8000-000000000002"  # 100 points
FIVE_OFF = "rewards/5eed0000-0000-4000-8000-000000000004"  # 400 points, gold and up
LAUNCH = "rewards/5eed0000-0000-4000-8000-000000000006"  # window in the past


async def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code(), caught.value.details() or ""


def redeem(
    cid: uuid.UUID, order: str, key: str, reward: str = FREE_COFFEE
) -> pb.RedeemRewardRequest:
    return pb.RedeemRewardRequest(
        customer=f"customers/{cid}", reward=reward, order_id=order, idempotency_key=key
    )


async def account(api: Stub, cid: uuid.UUID) -> pb.LoyaltyAccount:
    return await api.GetLoyaltyAccount(pb.GetLoyaltyAccountRequest(customer=f"customers/{cid}"))


async def test_account_shows_tier_progress_and_expiry(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    fresh = await account(api, cid)
    assert (fresh.balance, fresh.tier, fresh.next_tier, fresh.points_to_next_tier) == (
        0,
        pb.TIER_GREEN,
        pb.TIER_GOLD,
        1500,
    )
    assert fresh.name == f"customers/{cid}/loyaltyAccount" and not fresh.HasField("expire_time")
    await earn(ctx, cid, 1600)
    gold = await account(api, cid)
    assert (gold.balance, gold.lifetime_points, gold.tier_points) == (1600, 1600, 1600)
    assert (gold.tier, gold.next_tier, gold.points_to_next_tier) == (
        pb.TIER_GOLD,
        pb.TIER_RESERVE,
        3400,
    )
    assert gold.expiring_points == 1600
    expires = gold.expire_time.ToDatetime(tzinfo=UTC)
    expected = datetime.now(UTC) + timedelta(days=180)
    assert abs((expires - expected).total_seconds()) < 300
    unknown = api.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(customer=f"customers/{uuid.uuid4()}")
    )
    assert (await code_of(unknown))[0] == grpc.StatusCode.NOT_FOUND


async def test_adjust_points_rules(api: Stub, new_customer: NewCustomer) -> None:
    cid = await new_customer()
    name = f"customers/{cid}"

    def adjust(points: int, reason: str = "goodwill", key: str = "adj-1") -> object:
        return api.AdjustPoints(
            pb.AdjustPointsRequest(customer=name, points=points, reason=reason, idempotency_key=key)
        )

    assert await code_of(adjust(10, reason="  ")) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "reason: required, 1..200 characters",
    )
    assert (await code_of(adjust(0)))[1].startswith("points:")
    assert (await code_of(adjust(5, reason="nul\x00")))[1].startswith("reason:")
    assert (await code_of(adjust(5, key="")))[1].startswith("idempotency_key:")
    first = await adjust(70)  # type: ignore[misc]
    assert (first.kind, first.points, first.source, first.member) == (
        pb.TRANSACTION_KIND_ADJUST,
        70,
        pb.TRANSACTION_SOURCE_OPERATOR,
        name,
    )
    assert await adjust(70) == first  # type: ignore[misc]
    assert (await code_of(adjust(71)))[0] == grpc.StatusCode.FAILED_PRECONDITION
    code, details = await code_of(adjust(-71, key="adj-2"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "below zero" in details
    await adjust(-70, key="adj-3")  # type: ignore[misc]
    assert (await account(api, cid)).balance == 0


async def test_transactions_page_newest_first(api: Stub, new_customer: NewCustomer) -> None:
    cid = await new_customer()
    for i in range(5):
        await api.AdjustPoints(
            pb.AdjustPointsRequest(
                customer=f"customers/{cid}", points=i + 1, reason=f"r{i}", idempotency_key=f"k{i}"
            )
        )
    seen, token = [], ""
    while True:
        page = await api.ListLoyaltyTransactions(
            pb.ListLoyaltyTransactionsRequest(
                customer=f"customers/{cid}", page_size=2, page_token=token
            )
        )
        seen += [t.points for t in page.transactions]
        token = page.next_page_token
        if not token:
            break
    assert seen == [5, 4, 3, 2, 1]
    bad = api.ListLoyaltyTransactions(
        pb.ListLoyaltyTransactionsRequest(customer=f"customers/{cid}", page_token="garbage")
    )
    assert (await code_of(bad))[1].startswith("page_token:")


async def test_catalogue_and_what_a_customer_can_redeem(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    everything = await api.ListRewards(pb.ListRewardsRequest())
    names = [r.name for r in everything.rewards]
    assert CUSTOMIZATION in names and LAUNCH in names and len(names) == 6
    five = next(r for r in everything.rewards if r.name == FIVE_OFF)
    assert five.amount_off.amount_minor == 500 and five.min_tier == pb.TIER_GOLD
    cid = await new_customer()
    await earn(ctx, cid, 450)  # green: can afford five-off but the tier is too low
    mine = await api.ListRewards(pb.ListRewardsRequest(customer=f"customers/{cid}"))
    assert [r.name for r in mine.rewards] == [
        CUSTOMIZATION,
        FREE_COFFEE,
        "rewards/5eed0000-0000-4000-8000-000000000003",
    ]
    paged = await api.ListRewards(pb.ListRewardsRequest(page_size=4))
    rest = await api.ListRewards(
        pb.ListRewardsRequest(page_size=4, page_token=paged.next_page_token)
    )
    assert [r.name for r in paged.rewards] + [r.name for r in rest.rewards] == names


async def test_quote_says_why_not(api: Stub, ctx: Context, new_customer: NewCustomer) -> None:
    cid = await new_customer()

    async def quote(reward: str, order: str = "o-1") -> pb.QuoteRedemptionResponse:
        return await api.QuoteRedemption(
            pb.QuoteRedemptionRequest(customer=f"customers/{cid}", reward=reward, order_id=order)
        )

    poor = await quote(FREE_COFFEE)
    assert (poor.redeemable, poor.reason) == (False, pb.INELIGIBLE_REASON_INSUFFICIENT_POINTS)
    await earn(ctx, cid, 500)
    ok = await quote(FREE_COFFEE)
    assert (ok.redeemable, ok.balance_before, ok.balance_after) == (True, 500, 400)
    assert (await quote(FIVE_OFF)).reason == pb.INELIGIBLE_REASON_TIER_TOO_LOW
    assert (await quote(LAUNCH)).reason == pb.INELIGIBLE_REASON_NOT_AVAILABLE
    await api.RedeemReward(redeem(cid, "o-1", "k-1"))
    assert (await quote(CUSTOMIZATION)).reason == pb.INELIGIBLE_REASON_ALREADY_REDEEMED_FOR_ORDER
    assert (await account(api, cid)).balance == 400  # quotes changed nothing
    missing = quote(f"rewards/{uuid.uuid4()}")
    assert (await code_of(missing))[0] == grpc.StatusCode.NOT_FOUND
    assert (await code_of(quote(FREE_COFFEE, order="")))[1].startswith("order_id:")


async def test_redeem_holds_replays_and_reverses(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    await earn(ctx, cid, 150)
    done = await api.RedeemReward(redeem(cid, "order-9", "key-9"))
    r = done.redemption
    assert (r.state, r.points, r.order_id, done.balance_after) == (
        pb.REDEMPTION_STATE_HELD,
        100,
        "order-9",
        50,
    )
    assert done.reward.free_drink_id == "brewed-coffee"
    held = r.hold_expire_time.ToDatetime(tzinfo=UTC) - r.create_time.ToDatetime(tzinfo=UTC)
    assert abs(held.total_seconds() - 1800) < 5
    view = await account(api, cid)
    assert (view.balance, view.held_points) == (50, 100)
    assert await api.RedeemReward(redeem(cid, "order-9", "key-9")) == done
    code, details = await code_of(api.RedeemReward(redeem(cid, "order-10", "key-9")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "key-9" in details
    code, _ = await code_of(api.RedeemReward(redeem(cid, "order-11", "key-11", LAUNCH)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    reversed_ = await api.ReverseRedemption(
        pb.ReverseRedemptionRequest(redemption=r.name, reason="customer changed their mind")
    )
    assert reversed_.state == pb.REDEMPTION_STATE_RELEASED
    again = await api.ReverseRedemption(pb.ReverseRedemptionRequest(redemption=r.name))
    assert again.state == pb.REDEMPTION_STATE_RELEASED
    view = await account(api, cid)
    assert (view.balance, view.held_points) == (150, 0)
    ledger = await api.ListLoyaltyTransactions(
        pb.ListLoyaltyTransactionsRequest(customer=f"customers/{cid}")
    )
    assert [(t.kind, t.points) for t in ledger.transactions] == [
        (pb.TRANSACTION_KIND_REVERSE, 100),
        (pb.TRANSACTION_KIND_REDEEM, -100),
        (pb.TRANSACTION_KIND_EARN, 150),
    ]
    assert ledger.transactions[0].source_ref == r.name
    missing = api.ReverseRedemption(
        pb.ReverseRedemptionRequest(redemption=f"redemptions/{uuid.uuid4()}")
    )
    assert (await code_of(missing))[0] == grpc.StatusCode.NOT_FOUND


async def test_timed_out_holds_are_released_by_the_job(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    await earn(ctx, cid, 100)
    done = await api.RedeemReward(redeem(cid, "o-late", "k-late"))
    assert (await release_holds(ctx, JobPolicy(), datetime.now(UTC))).rows == 0
    later = datetime.now(UTC) + timedelta(seconds=1801)
    assert (await release_holds(ctx, JobPolicy(), later)).rows == 1
    assert (await release_holds(ctx, JobPolicy(), later)).rows == 0
    view = await account(api, cid)
    assert (view.balance, view.held_points) == (100, 0)
    # A late reversal of an expired hold gives nothing back twice.
    again = await api.ReverseRedemption(
        pb.ReverseRedemptionRequest(redemption=done.redemption.name)
    )
    assert again.state == pb.REDEMPTION_STATE_EXPIRED
    assert (await account(api, cid)).balance == 100


async def _ledger_total(ctx: Context, cid: uuid.UUID) -> tuple[int, int]:
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT a.balance, (SELECT coalesce(sum(points), 0) FROM loyalty_points p"
            " WHERE p.account_id = a.id) AS total FROM loyalty_accounts a WHERE customer_id = $1",
            cid,
        )
    return row["balance"], row["total"]


async def test_hundred_concurrent_redeems_with_distinct_keys_one_wins(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    await earn(ctx, cid, 100)
    results = await asyncio.gather(
        *(api.RedeemReward(redeem(cid, f"order-{i}", f"key-{i}")) for i in range(100)),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, pb.RedeemRewardResponse)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1 and len(losses) == 99
    assert {e.code() for e in losses} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert await _ledger_total(ctx, cid) == (0, 0)


async def test_hundred_concurrent_redeems_with_one_key_all_get_the_first(
    api: Stub, ctx: Context, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    await earn(ctx, cid, 100)
    results = await asyncio.gather(
        *(api.RedeemReward(redeem(cid, "order-x", "the-key")) for _ in range(100))
    )
    assert len({r.redemption.name for r in results}) == 1
    assert {r.balance_after for r in results} == {0}
    assert await _ledger_total(ctx, cid) == (0, 0)
    async with ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM redemptions") == 1
