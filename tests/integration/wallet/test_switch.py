"""Switching the family wallet on and off through a real gRPC channel."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc

from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases import rewards
from tests.integration.wallet.conftest import (
    FREE_COFFEE,
    NewFamily,
    balances,
    code_of,
    complete_order,
    ledger_consistent,
)
from tests.support.ledger import give

Stub = customer_pb2_grpc.CustomerServiceStub


def switch(family: uuid.UUID, pooled: bool, by: uuid.UUID) -> pb.SetFamilyWalletRequest:
    return pb.SetFamilyWalletRequest(
        family=f"families/{family}", pooled=pooled, requested_by=f"customers/{by}"
    )


async def account(api: Stub, cid: uuid.UUID) -> pb.LoyaltyAccount:
    return await api.GetLoyaltyAccount(pb.GetLoyaltyAccountRequest(customer=f"customers/{cid}"))


async def test_pooling_moves_balances_in_with_transfers_naming_each_member(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    for cid, points in zip(fam.members, (120, 80, 40), strict=True):
        await give(ctx, cid, points)
    family = await api.SetFamilyWallet(switch(fam.id, True, fam.owner))
    assert family.wallet_pooled and family.member_count == 3
    after = await balances(ctx, fam)
    assert after["wallet"] == 240 and sum(after.values()) == 240
    assert all(after[str(m)] == 0 for m in fam.members)
    view = await account(api, fam.child)
    assert view.pooled and view.name == f"families/{fam.id}/loyaltyAccount"
    assert (view.balance, view.member_contribution) == (240, 40)
    ledger = await api.ListLoyaltyTransactions(
        pb.ListLoyaltyTransactionsRequest(customer=f"customers/{fam.adult}")
    )
    transfers = [t for t in ledger.transactions if t.kind == pb.TRANSACTION_KIND_TRANSFER]
    assert sorted((t.member, t.points) for t in transfers) == sorted(
        (f"customers/{m}", p) for m, p in zip(fam.members, (120, 80, 40), strict=True)
    )
    assert all(t.source == pb.TRANSACTION_SOURCE_FAMILY for t in transfers)
    # Again: nothing more moves, the answer is the same.
    again = await api.SetFamilyWallet(switch(fam.id, True, fam.adult))
    assert again.wallet_pooled and await balances(ctx, fam) == after
    await ledger_consistent(ctx)


async def test_members_earn_into_the_pool_and_tiers_follow_the_wallet(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    await api.SetFamilyWallet(switch(fam.id, True, fam.owner))
    await complete_order(ctx, fam.child, 900_00)  # 9,000 points
    await complete_order(ctx, fam.adult, 100)
    view = await account(api, fam.owner)
    assert (view.balance, view.tier, view.member_contribution) == (9010, pb.TIER_RESERVE, 0)
    assert (await account(api, fam.child)).member_contribution == 9000
    ledger = await api.ListLoyaltyTransactions(
        pb.ListLoyaltyTransactionsRequest(customer=f"customers/{fam.owner}")
    )
    earned = {t.member: t.points for t in ledger.transactions if t.kind == pb.TRANSACTION_KIND_EARN}
    assert earned == {f"customers/{fam.child}": 9000, f"customers/{fam.adult}": 10}
    context = await api.GetOrderContext(
        pb.GetOrderContextRequest(customer=f"customers/{fam.child}")
    )
    assert context.wallet_pooled and context.points_balance == 9010
    assert context.tier == pb.TIER_RESERVE
    assert context.redeemable_rewards and all(
        r.requires_approval for r in context.redeemable_rewards
    )
    adult = await api.GetOrderContext(pb.GetOrderContextRequest(customer=f"customers/{fam.adult}"))
    assert not any(r.requires_approval for r in adult.redeemable_rewards)


async def test_unpooling_splits_by_contribution_with_the_remainder_to_the_owner(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    # The proto's example: contributions owner -99, adult 150, child 50; pool 101.
    fam = await new_family()
    await give(ctx, fam.adult, 150)
    await give(ctx, fam.child, 50)
    await api.SetFamilyWallet(switch(fam.id, True, fam.owner))
    await give(ctx, fam.owner, -99)
    assert (await account(api, fam.owner)).member_contribution == -99
    family = await api.SetFamilyWallet(switch(fam.id, False, fam.adult))
    assert not family.wallet_pooled
    after = await balances(ctx, fam)
    assert after == {"wallet": 0, str(fam.owner): 1, str(fam.adult): 75, str(fam.child): 25}
    mine = await account(api, fam.adult)
    assert not mine.pooled and mine.name == f"customers/{fam.adult}/loyaltyAccount"
    assert await api.SetFamilyWallet(switch(fam.id, False, fam.adult)) == family
    assert await balances(ctx, fam) == after
    # Pooling again starts a new period: contributions count from here.
    await api.SetFamilyWallet(switch(fam.id, True, fam.owner))
    assert [(await account(api, m)).member_contribution for m in fam.members] == [1, 75, 25]
    await ledger_consistent(ctx)


async def test_with_no_live_contributor_the_owner_takes_the_pool(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    await give(ctx, fam.adult, 100)
    await give(ctx, fam.child, 30)
    await api.SetFamilyWallet(switch(fam.id, True, fam.owner))
    await give(ctx, fam.adult, -100)  # the adult spent all it brought in: net 0
    async with ctx.pool.acquire() as conn:
        # The child leaves the family: a deleted member gets no share.
        await conn.execute("UPDATE customers SET deleted_at = now() WHERE id = $1", fam.child)
    await api.SetFamilyWallet(switch(fam.id, False, fam.owner))
    assert await balances(ctx, fam) == {
        "wallet": 0,
        str(fam.owner): 30,
        str(fam.adult): 0,
        str(fam.child): 0,
    }


async def test_a_switch_is_refused_while_a_hold_is_open(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    await give(ctx, fam.adult, 300)
    held = await rewards.redeem_reward(ctx, fam.adult, FREE_COFFEE, "o-1", "k-1")
    code, details = await code_of(api.SetFamilyWallet(switch(fam.id, True, fam.owner)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "held" in details
    await rewards.reverse_redemption(ctx, held.redemption.id, "", "")
    await api.SetFamilyWallet(switch(fam.id, True, fam.owner))
    await rewards.redeem_reward(ctx, fam.adult, FREE_COFFEE, "o-2", "k-2")
    code, _ = await code_of(api.SetFamilyWallet(switch(fam.id, False, fam.owner)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert sum((await balances(ctx, fam)).values()) == 200


async def test_only_an_owner_or_adult_of_the_family_may_switch(
    api: Stub, new_family: NewFamily
) -> None:
    fam, other = await new_family(), await new_family()
    for by in (fam.child, other.owner, uuid.uuid4()):
        code, details = await code_of(api.SetFamilyWallet(switch(fam.id, True, by)))
        assert code == grpc.StatusCode.PERMISSION_DENIED, details
    bad = pb.SetFamilyWalletRequest(family=f"families/{fam.id}", pooled=True, requested_by="x")
    code, details = await code_of(api.SetFamilyWallet(bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("requested_by:")
    code, _ = await code_of(api.SetFamilyWallet(switch(uuid.uuid4(), True, fam.owner)))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_a_transfer_does_not_restart_the_inactivity_clock(
    ctx: Context, api: Stub, new_family: NewFamily
) -> None:
    fam = await new_family()
    await give(ctx, fam.adult, 100)
    await give(ctx, fam.child, 50)
    long_ago = datetime.now(UTC) - timedelta(days=100)
    older = long_ago - timedelta(days=30)
    async with ctx.pool.acquire() as conn:
        for cid, at in ((fam.adult, long_ago), (fam.child, older)):
            await conn.execute(
                "UPDATE loyalty_accounts SET last_activity_at = $2 WHERE customer_id = $1", cid, at
            )
    await api.SetFamilyWallet(switch(fam.id, True, fam.owner))
    view = await account(api, fam.owner)
    # The pool expires as its most recently active member's points would have.
    expected = long_ago + timedelta(days=180)
    assert abs((view.expire_time.ToDatetime(tzinfo=UTC) - expected).total_seconds()) < 1
    # A member's activity after pooling keeps the whole pool alive.
    await complete_order(ctx, fam.child, 500)
    renewed = (await account(api, fam.owner)).expire_time.ToDatetime(tzinfo=UTC)
    assert renewed > datetime.now(UTC) + timedelta(days=179)
