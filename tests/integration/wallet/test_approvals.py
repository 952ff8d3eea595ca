"""A child's redemption from the pool waits for an adult: approve, decline, expire."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc

from customer_core.context import Context
from customer_core.domain.jobs import JobPolicy
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases import wallet
from customer_core.usecases.jobs.holds import release_holds
from tests.integration.wallet.conftest import (
    FREE_COFFEE,
    Family,
    NewFamily,
    balances,
    code_of,
    ledger_consistent,
)
from tests.support.ledger import give

Stub = customer_pb2_grpc.CustomerServiceStub
COFFEE = f"rewards/{FREE_COFFEE}"


async def pooled_family(ctx: Context, new_family: NewFamily, points: int = 300) -> Family:
    fam = await new_family()
    await give(ctx, fam.owner, points)
    await wallet.set_wallet(ctx, fam.id, True, fam.owner, "")
    return fam


async def child_redeems(api: Stub, fam: Family, order: str = "o-1") -> pb.RedeemRewardResponse:
    return await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=f"customers/{fam.child}",
            reward=COFFEE,
            order_id=order,
            idempotency_key=f"k-{order}",
        )
    )


def approve(r: pb.Redemption, by: uuid.UUID) -> pb.ApproveRedemptionRequest:
    return pb.ApproveRedemptionRequest(redemption=r.name, approver=f"customers/{by}")


def decline(r: pb.Redemption, by: uuid.UUID) -> pb.DeclineRedemptionRequest:
    return pb.DeclineRedemptionRequest(redemption=r.name, approver=f"customers/{by}", reason="no")


async def test_a_childs_redemption_waits_then_an_adult_approves_it(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await pooled_family(ctx, new_family)
    quote = await api.QuoteRedemption(
        pb.QuoteRedemptionRequest(customer=f"customers/{fam.child}", reward=COFFEE, order_id="o-1")
    )
    assert not quote.redeemable and quote.reason == pb.INELIGIBLE_REASON_NEEDS_APPROVAL
    asked = await child_redeems(api, fam)
    r = asked.redemption
    assert r.state == pb.REDEMPTION_STATE_PENDING_APPROVAL and asked.balance_after == 300
    assert not r.HasField("hold_expire_time")
    assert (await balances(ctx, fam))["wallet"] == 300  # no hold yet
    pending = await api.ListPendingApprovals(
        pb.ListPendingApprovalsRequest(family=f"families/{fam.id}")
    )
    assert [p.name for p in pending.redemptions] == [r.name]
    deadline = pending.redemptions[0].approval_expire_time.ToDatetime(tzinfo=UTC)
    expected = datetime.now(UTC) + timedelta(seconds=ctx.settings.loyalty.hold_seconds)
    assert abs((deadline - expected).total_seconds()) < 300
    # The same order cannot take a second reward while one waits.
    code, _ = await code_of(
        api.RedeemReward(
            pb.RedeemRewardRequest(
                customer=f"customers/{fam.adult}",
                reward=COFFEE,
                order_id="o-1",
                idempotency_key="other",
            )
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    done = await api.ApproveRedemption(approve(r, fam.adult))
    assert done.redemption.state == pb.REDEMPTION_STATE_HELD
    assert done.redemption.decided_by == f"customers/{fam.adult}"
    assert done.balance_after == 200 and (await balances(ctx, fam))["wallet"] == 200
    # Approving twice (even by someone else) changes nothing and answers the same.
    again = await api.ApproveRedemption(approve(r, fam.owner))
    assert again.redemption.state == pb.REDEMPTION_STATE_HELD
    assert (await balances(ctx, fam))["wallet"] == 200
    ledger = await api.ListLoyaltyTransactions(
        pb.ListLoyaltyTransactionsRequest(customer=f"customers/{fam.owner}")
    )
    redeems = [t for t in ledger.transactions if t.kind == pb.TRANSACTION_KIND_REDEEM]
    assert [(t.member, t.points) for t in redeems] == [(f"customers/{fam.child}", -100)]
    assert not (
        await api.ListPendingApprovals(pb.ListPendingApprovalsRequest(family=f"families/{fam.id}"))
    ).redemptions
    code, _ = await code_of(api.DeclineRedemption(decline(r, fam.owner)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    await ledger_consistent(ctx)


async def test_a_declined_redemption_moves_nothing_and_frees_the_order(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await pooled_family(ctx, new_family)
    r = (await child_redeems(api, fam)).redemption
    declined = await api.DeclineRedemption(decline(r, fam.owner))
    assert declined.state == pb.REDEMPTION_STATE_DECLINED
    assert declined.decided_by == f"customers/{fam.owner}"
    assert await api.DeclineRedemption(decline(r, fam.adult)) == declined
    code, details = await code_of(api.ApproveRedemption(approve(r, fam.adult)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "declined" in details
    assert (await balances(ctx, fam))["wallet"] == 300
    # The order may take a reward again (the adult pays for it).
    held = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=f"customers/{fam.adult}", reward=COFFEE, order_id="o-1", idempotency_key="k2"
        )
    )
    assert held.redemption.state == pb.REDEMPTION_STATE_HELD


async def test_unapproved_requests_expire_with_the_holds_job(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await pooled_family(ctx, new_family)
    r = (await child_redeems(api, fam)).redemption
    later = datetime.now(UTC) + timedelta(seconds=ctx.settings.loyalty.hold_seconds + 60)
    outcome = await release_holds(ctx, JobPolicy(), later)
    assert "expired 1 pending approvals" in outcome.detail
    code, details = await code_of(api.ApproveRedemption(approve(r, fam.adult)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "expired" in details
    pending = await api.ListPendingApprovals(
        pb.ListPendingApprovalsRequest(family=f"families/{fam.id}")
    )
    assert not pending.redemptions
    assert (await balances(ctx, fam))["wallet"] == 300


async def test_approving_after_the_deadline_expires_the_request(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await pooled_family(ctx, new_family)
    r = (await child_redeems(api, fam)).redemption
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "UPDATE redemption_approvals SET expires_at = now() - interval '1 second'"
        )
    code, details = await code_of(api.ApproveRedemption(approve(r, fam.owner)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "expired" in details
    async with ctx.pool.acquire() as conn:
        state = await conn.fetchval("SELECT state FROM redemptions")
    assert state == "expired"  # recorded, although the call was refused
    assert (await balances(ctx, fam))["wallet"] == 300


async def test_approval_needs_an_adult_of_the_family_and_enough_points(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await pooled_family(ctx, new_family, points=150)
    other = await new_family()
    r = (await child_redeems(api, fam)).redemption
    for who in (fam.child, other.owner):
        code, _ = await code_of(api.ApproveRedemption(approve(r, who)))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    code, details = await code_of(
        api.ApproveRedemption(
            pb.ApproveRedemptionRequest(redemption=r.name, approver="customers/nope")
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("approver:")
    code, _ = await code_of(
        api.ApproveRedemption(
            pb.ApproveRedemptionRequest(
                redemption=f"redemptions/{uuid.uuid4()}", approver=f"customers/{fam.owner}"
            )
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    # The adult spends from the pool meanwhile: the approval no longer fits.
    await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=f"customers/{fam.adult}", reward=COFFEE, order_id="o-2", idempotency_key="a"
        )
    )
    code, details = await code_of(api.ApproveRedemption(approve(r, fam.owner)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "50" in details
    assert (await balances(ctx, fam))["wallet"] == 50
    # An ordinary hold needs no approval.
    adult_hold = await api.ListPendingApprovals(
        pb.ListPendingApprovalsRequest(family=f"families/{fam.id}", page_size=1)
    )
    assert [p.name for p in adult_hold.redemptions] == [r.name]


async def test_a_child_of_an_unpooled_family_redeems_its_own_points_directly(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await new_family()
    await give(ctx, fam.child, 100)
    held = await child_redeems(api, fam)
    assert held.redemption.state == pb.REDEMPTION_STATE_HELD
    code, _ = await code_of(api.ApproveRedemption(approve(held.redemption, fam.owner)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
