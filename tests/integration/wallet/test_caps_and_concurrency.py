"""Weekly caps, and several members spending from one pool at once."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from customer_core.context import Context
from customer_core.errors import FailedPrecondition, InsufficientPoints, LimitExceeded
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases import rewards, wallet, wallet_approvals
from tests.integration.wallet.conftest import (
    CUSTOMIZATION,
    FREE_COFFEE,
    NewFamily,
    balances,
    code_of,
    ledger_consistent,
)
from tests.support.ledger import give

Stub = customer_pb2_grpc.CustomerServiceStub


def cap(cid: uuid.UUID, points: int, by: uuid.UUID) -> pb.SetMemberSpendingCapRequest:
    return pb.SetMemberSpendingCapRequest(
        customer=f"customers/{cid}", weekly_points=points, set_by=f"customers/{by}"
    )


def redeem(cid: uuid.UUID, order: str, reward: uuid.UUID = FREE_COFFEE) -> pb.RedeemRewardRequest:
    return pb.RedeemRewardRequest(
        customer=f"customers/{cid}",
        reward=f"rewards/{reward}",
        order_id=order,
        idempotency_key=f"k-{order}",
    )


async def test_a_weekly_cap_limits_what_a_member_redeems(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    await give(ctx, fam.adult, 1000)
    set_cap = await api.SetMemberSpendingCap(cap(fam.adult, 150, fam.owner))
    assert (set_cap.weekly_points, set_cap.spent_this_week) == (150, 0)
    assert set_cap.week_start_time.ToDatetime().weekday() == 0  # a Monday
    first = await api.RedeemReward(redeem(fam.adult, "o-1"))
    code, details = await code_of(api.RedeemReward(redeem(fam.adult, "o-2")))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "150" in details
    # 25 more still fits under the cap (100 + 25 + 25 = 150).
    await api.RedeemReward(redeem(fam.adult, "o-3", CUSTOMIZATION))
    await api.RedeemReward(redeem(fam.adult, "o-4", CUSTOMIZATION))
    code, _ = await code_of(api.RedeemReward(redeem(fam.adult, "o-5", CUSTOMIZATION)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # A released hold gives its room back; removing the cap lifts it.
    await api.ReverseRedemption(pb.ReverseRedemptionRequest(redemption=first.redemption.name))
    await api.RedeemReward(redeem(fam.adult, "o-6"))
    lifted = await api.SetMemberSpendingCap(cap(fam.adult, 0, fam.adult))
    assert (lifted.weekly_points, lifted.spent_this_week) == (0, 150)
    await api.RedeemReward(redeem(fam.adult, "o-7"))
    # Other members are not capped by the adult's cap.
    await give(ctx, fam.owner, 500)
    await api.SetMemberSpendingCap(cap(fam.child, 25, fam.owner))
    await api.RedeemReward(redeem(fam.owner, "o-8"))


async def test_a_cap_is_set_by_an_adult_of_the_family_within_bounds(
    api: Stub, new_family: NewFamily
) -> None:
    fam, other = await new_family(), await new_family()
    code, _ = await code_of(api.SetMemberSpendingCap(cap(fam.child, 100, fam.child)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = await code_of(api.SetMemberSpendingCap(cap(fam.child, 100, other.owner)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    for points in (-1, 10_000_001):
        code, details = await code_of(api.SetMemberSpendingCap(cap(fam.child, points, fam.owner)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("weekly_points:")
    code, details = await code_of(
        api.SetMemberSpendingCap(
            pb.SetMemberSpendingCapRequest(customer=f"customers/{fam.child}", weekly_points=5)
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("set_by:")
    code, _ = await code_of(api.SetMemberSpendingCap(cap(uuid.uuid4(), 5, fam.owner)))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_a_childs_pending_request_counts_against_its_cap(
    ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    await give(ctx, fam.owner, 1000)
    await wallet.set_wallet(ctx, fam.id, True, fam.owner, "")
    await wallet.set_cap(ctx, fam.child, 100, fam.owner, "")
    await rewards.redeem_reward(ctx, fam.child, FREE_COFFEE, "o-1", "k-1")
    with pytest.raises(LimitExceeded):
        await rewards.redeem_reward(ctx, fam.child, CUSTOMIZATION, "o-2", "k-2")


async def test_concurrent_redemptions_and_approvals_never_overspend_the_pool(
    ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    await give(ctx, fam.owner, 600)
    await give(ctx, fam.adult, 400)
    await wallet.set_wallet(ctx, fam.id, True, fam.owner, "")
    # Six of the child's requests wait; then adults redeem and approve all at once.
    asks = [
        await rewards.redeem_reward(ctx, fam.child, FREE_COFFEE, f"c-{i}", f"kc-{i}")
        for i in range(6)
    ]
    calls = [
        rewards.redeem_reward(ctx, who, FREE_COFFEE, f"a-{i}", f"ka-{i}")
        for i in range(8)
        for who in (fam.owner, fam.adult)
    ]
    calls += [
        wallet_approvals.approve(ctx, a.redemption.id, by, "")
        for a in asks
        for by in (fam.owner, fam.adult)  # each approved twice, concurrently
    ]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(o, InsufficientPoints | FailedPrecondition) for o in refused), refused
    async with ctx.pool.acquire() as conn:
        states = dict(
            await conn.fetch(
                "SELECT state, count(*) FROM redemptions WHERE order_id LIKE 'c-%' GROUP BY state"
            )
        )
        held = await conn.fetchval("SELECT count(*) FROM redemptions WHERE state = 'held'")
        redeems = await conn.fetchval("SELECT count(*) FROM loyalty_points WHERE kind = 'redeem'")
    # 1,000 points pay for exactly ten 100-point holds, however the race went,
    # and a request approved twice at once took its points once.
    assert held == redeems == 10
    assert (await balances(ctx, fam))["wallet"] == 0
    assert sum(states.values()) == 6 and set(states) <= {"held", "pending_approval"}
    await ledger_consistent(ctx)
