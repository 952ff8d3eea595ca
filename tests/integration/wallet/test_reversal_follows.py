"""A cancelled order's points come back from wherever pooling and unpooling moved them,
and a reward can only be held against an order that is still open."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from customer_core.context import Context
from customer_core.db import campaigns as campaigns_db
from customer_core.db import inbox as inbox_db
from customer_core.db import redemptions as redemptions_db
from customer_core.domain.campaign_spec import campaign_from_spec
from customer_core.domain.jobs import JobPolicy
from customer_core.domain.order_events import Cancelled, Completed, OrderEvent, Placed, Topic
from customer_core.errors import FailedPrecondition
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.usecases import rewards, wallet, wallet_approvals
from customer_core.usecases.events import Incoming, apply_batch
from customer_core.usecases.jobs.holds import release_holds
from tests.integration.wallet.conftest import (
    FREE_COFFEE,
    Family,
    NewFamily,
    balances,
    code_of,
    complete_order,
    ledger_consistent,
)
from tests.support.ledger import give

Stub = customer_pb2_grpc.CustomerServiceStub


async def order_event(ctx: Context, cid: uuid.UUID, oid: str, topic: Topic) -> None:
    body: object = {
        Topic.PLACED: Placed((), "USD", 5000, 5000),
        Topic.COMPLETED: Completed(5000, "USD"),
        Topic.CANCELLED: Cancelled("refund"),
    }[topic]
    event = OrderEvent(str(uuid.uuid4()), topic, datetime.now(UTC), cid, oid, 1, body)  # type: ignore[arg-type]
    result = await apply_batch(ctx, [Incoming(event, topic.value, 0, 0)])
    assert not result.rejected, result.rejected


async def placed_order(ctx: Context, cid: uuid.UUID) -> str:
    """A new order the customer placed and has neither completed nor cancelled."""
    oid = f"ord-{uuid.uuid4().hex[:12]}"
    await order_event(ctx, cid, oid, Topic.PLACED)
    return oid


async def pooled_family(ctx: Context, new_family: NewFamily, points: int) -> Family:
    """A new family whose wallet is pooled and holds `points` (the owner's)."""
    fam = await new_family()
    await give(ctx, fam.owner, points)
    await wallet.set_wallet(ctx, fam.id, True, fam.owner, "")
    return fam


async def add_bonus_campaign(ctx: Context, bonus: int) -> None:
    now = datetime.now(UTC)
    spec = {
        "displayName": "Bonus",
        "window": {
            "start": (now - timedelta(days=1)).isoformat(),
            "end": (now + timedelta(days=1)).isoformat(),
        },
        "effect": {"bonusPoints": bonus},
    }
    campaign = campaign_from_spec("default/bonus", spec, id=uuid.uuid4())
    async with ctx.pool.acquire() as conn:
        await campaigns_db.insert_campaign(conn, "default", "bonus", campaign, spec)


def total(b: dict[str, int]) -> int:
    return sum(b.values())


async def test_earned_unpooled_then_pooled_is_reversed_from_the_wallet(
    ctx: Context, new_family: NewFamily
) -> None:
    await add_bonus_campaign(ctx, 50)
    fam = await new_family()
    await give(ctx, fam.owner, 30)
    oid = await complete_order(ctx, fam.adult, 5000)  # 500 base + 50 campaign
    assert total(await balances(ctx, fam)) == 580
    await wallet.set_wallet(ctx, fam.id, True, fam.owner, "")
    await order_event(ctx, fam.adult, oid, Topic.CANCELLED)
    assert total(await balances(ctx, fam)) == 30
    await wallet.set_wallet(ctx, fam.id, False, fam.owner, "")
    after = await balances(ctx, fam)
    assert after[str(fam.owner)] == 30 and total(after) == 30, after
    await ledger_consistent(ctx)


async def test_earned_pooled_then_unpooled_is_reversed_from_the_members_account(
    ctx: Context, new_family: NewFamily
) -> None:
    await add_bonus_campaign(ctx, 50)
    fam = await pooled_family(ctx, new_family, 100)
    oid = await complete_order(ctx, fam.adult, 5000)
    await wallet.set_wallet(ctx, fam.id, False, fam.owner, "")
    split = await balances(ctx, fam)
    assert (split[str(fam.owner)], split[str(fam.adult)], split["wallet"]) == (100, 550, 0)
    await order_event(ctx, fam.adult, oid, Topic.CANCELLED)
    after = await balances(ctx, fam)
    assert (after[str(fam.owner)], after[str(fam.adult)], total(after)) == (100, 0, 100), after
    await ledger_consistent(ctx)


async def test_what_the_member_spent_is_taken_from_the_rest_of_the_family(
    ctx: Context, new_family: NewFamily
) -> None:
    # The adult's share after unpooling is short (the pool paid for something):
    # the rest of the cancelled order comes from the family's other accounts.
    fam = await pooled_family(ctx, new_family, 400)
    oid = await complete_order(ctx, fam.adult, 5000)
    await give(ctx, fam.owner, -450)  # the pool spent 450 of its 900
    await wallet.set_wallet(ctx, fam.id, False, fam.owner, "")
    before = await balances(ctx, fam)
    assert total(before) == 450 and before[str(fam.adult)] < 500
    await order_event(ctx, fam.adult, oid, Topic.CANCELLED)
    assert total(await balances(ctx, fam)) == 0
    await ledger_consistent(ctx)


@pytest.mark.parametrize("state", ["completed", "cancelled"])
async def test_no_reward_is_held_against_a_finished_order(
    api: Stub, ctx: Context, new_family: NewFamily, state: str
) -> None:
    fam = await new_family()
    await give(ctx, fam.owner, 300)
    oid = await placed_order(ctx, fam.owner)
    await order_event(
        ctx, fam.owner, oid, Topic.COMPLETED if state == "completed" else Topic.CANCELLED
    )
    code, details = await code_of(
        api.RedeemReward(
            pb.RedeemRewardRequest(
                customer=f"customers/{fam.owner}",
                reward=f"rewards/{FREE_COFFEE}",
                order_id=oid,
                idempotency_key=f"k-{oid}",
            )
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert oid in details and state in details, details
    assert (await balances(ctx, fam))[str(fam.owner)] == 300 + 500 * (state == "completed")


async def test_an_approval_after_the_order_finished_places_no_hold(
    api: Stub, ctx: Context, new_family: NewFamily
) -> None:
    fam = await pooled_family(ctx, new_family, 300)
    oid = await placed_order(ctx, fam.child)
    asked = await rewards.redeem_reward(ctx, fam.child, FREE_COFFEE, oid, f"k-{oid}")
    assert asked.redemption.state.value == "pending_approval"
    await order_event(ctx, fam.child, oid, Topic.CANCELLED)
    with pytest.raises(FailedPrecondition, match="cancelled"):
        await wallet_approvals.approve(ctx, asked.redemption.id, fam.owner, "")
    code, details = await code_of(
        api.ApproveRedemption(
            pb.ApproveRedemptionRequest(
                redemption=f"redemptions/{asked.redemption.id}",
                approver=f"customers/{fam.owner}",
            )
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and oid in details, details
    assert (await balances(ctx, fam))["wallet"] == 300
    await ledger_consistent(ctx)


async def test_an_approval_racing_the_orders_completion_is_refused(
    ctx: Context, new_family: NewFamily
) -> None:
    # The completion committed after the consumer's batch had looked for pending
    # approvals (or the order's row says so for any other reason): approving refuses.
    fam = await pooled_family(ctx, new_family, 300)
    oid = await placed_order(ctx, fam.child)
    asked = await rewards.redeem_reward(ctx, fam.child, FREE_COFFEE, oid, f"k-{oid}")
    async with ctx.pool.acquire() as conn:
        await conn.execute("UPDATE order_history SET completed_at = now() WHERE order_id = $1", oid)
    with pytest.raises(FailedPrecondition, match=f"order '{oid}' is already completed"):
        await wallet_approvals.approve(ctx, asked.redemption.id, fam.owner, "")
    assert (await balances(ctx, fam))["wallet"] == 300


@pytest.mark.parametrize("topic", [Topic.COMPLETED, Topic.CANCELLED])
async def test_a_pending_approval_ends_when_its_order_finishes(
    ctx: Context, new_family: NewFamily, topic: Topic
) -> None:
    # Left pending it would block switching the wallet and count against the cap.
    fam = await pooled_family(ctx, new_family, 300)
    oid = await placed_order(ctx, fam.child)
    asked = await rewards.redeem_reward(ctx, fam.child, FREE_COFFEE, oid, f"k-{oid}")
    await order_event(ctx, fam.child, oid, topic)
    async with ctx.pool.acquire() as conn:
        state = await conn.fetchval(
            "SELECT state FROM redemptions WHERE id = $1", asked.redemption.id
        )
    assert state == "expired"
    await wallet.set_wallet(ctx, fam.id, False, fam.owner, "")
    await ledger_consistent(ctx)


async def test_a_redemption_waits_for_the_batch_completing_its_order(
    ctx: Context, new_family: NewFamily
) -> None:
    # The consumer's batch has taken the customer's lock and found no hold to
    # capture; a redemption arriving now must not slip a hold in before it commits.
    fam = await new_family()
    await give(ctx, fam.owner, 300)
    oid = await placed_order(ctx, fam.owner)
    async with ctx.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await inbox_db.lock_members(conn, [fam.owner])
        await redemptions_db.capture_holds_for_order(conn, [oid])
        await conn.execute("UPDATE order_history SET completed_at = now() WHERE order_id = $1", oid)
        redeem = asyncio.create_task(
            rewards.redeem_reward(ctx, fam.owner, FREE_COFFEE, oid, f"k-{oid}")
        )
        await asyncio.sleep(0.5)  # let it reach the lock (or, unfixed, finish)
        await tx.commit()
    with pytest.raises(FailedPrecondition, match="already completed"):
        await redeem


@pytest.mark.parametrize("release", ["reverse", "cancel", "expire"])
async def test_points_held_at_the_cancellation_are_taken_when_they_come_back(
    ctx: Context, new_family: NewFamily, release: str
) -> None:
    # 150 + 50 campaign points earned; 100 of them held for another order; the
    # cancellation can take only 100 then, and takes the rest when the hold returns.
    await add_bonus_campaign(ctx, 50)
    fam = await new_family()
    first = await complete_order(ctx, fam.adult, 1500)
    other = f"ord-{uuid.uuid4().hex[:12]}"
    await order_event(ctx, fam.adult, other, Topic.PLACED)
    held = await rewards.redeem_reward(ctx, fam.adult, FREE_COFFEE, other, f"k-{other}")
    await order_event(ctx, fam.adult, first, Topic.CANCELLED)
    assert total(await balances(ctx, fam)) == 0
    if release == "reverse":
        await rewards.reverse_redemption(ctx, held.redemption.id, "", "")
    elif release == "cancel":
        await order_event(ctx, fam.adult, other, Topic.CANCELLED)
    else:
        await release_holds(ctx, JobPolicy(), datetime.now(UTC) + timedelta(days=1))
    assert total(await balances(ctx, fam)) == 0
    async with ctx.pool.acquire() as conn:
        row = await campaigns_db.fetch_live(conn, "default", "bonus")
        owed = await conn.fetchval("SELECT sum(points) FROM points_owed")
    assert row is not None and (row.state.points_awarded, row.customers_reached) == (0, 0)
    assert owed == 0
    await ledger_consistent(ctx)


@pytest.mark.parametrize("topic", [Topic.COMPLETED, Topic.CANCELLED])
async def test_a_retry_after_the_order_finished_answers_the_first_call(
    api: Stub, ctx: Context, new_family: NewFamily, topic: Topic
) -> None:
    # The finished-order refusal comes after the stored answer: a client retrying
    # RedeemReward or ApproveRedemption (say after ABORTED or a lost reply) once the
    # order finished gets what its first call did, not FAILED_PRECONDITION.
    fam = await pooled_family(ctx, new_family, 300)
    adult_order, child_order = (f"ord-{uuid.uuid4().hex[:12]}" for _ in range(2))
    redeem = pb.RedeemRewardRequest(
        customer=f"customers/{fam.adult}",
        reward=f"rewards/{FREE_COFFEE}",
        order_id=adult_order,
        idempotency_key=f"k-{adult_order}",
    )
    asked = await api.RedeemReward(
        pb.RedeemRewardRequest(
            customer=f"customers/{fam.child}",
            reward=f"rewards/{FREE_COFFEE}",
            order_id=child_order,
            idempotency_key=f"k-{child_order}",
        )
    )
    approve = pb.ApproveRedemptionRequest(
        redemption=asked.redemption.name,
        approver=f"customers/{fam.owner}",
        idempotency_key=f"k-approve-{child_order}",
    )
    held, approved = await api.RedeemReward(redeem), await api.ApproveRedemption(approve)
    assert held.redemption.state == approved.redemption.state == pb.REDEMPTION_STATE_HELD
    for oid, who in ((adult_order, fam.adult), (child_order, fam.child)):
        await order_event(ctx, who, oid, topic)
    before = await balances(ctx, fam)

    assert await api.RedeemReward(redeem) == held
    assert await api.ApproveRedemption(approve) == approved
    assert await balances(ctx, fam) == before
    # A new key for the finished order is refused, naming its state.
    code, details = await code_of(
        api.RedeemReward(
            pb.RedeemRewardRequest(
                customer=f"customers/{fam.adult}",
                reward=f"rewards/{FREE_COFFEE}",
                order_id=adult_order,
                idempotency_key=f"k2-{adult_order}",
            )
        )
    )
    finished = "completed" if topic is Topic.COMPLETED else "cancelled"
    assert code == grpc.StatusCode.FAILED_PRECONDITION and f"already {finished}" in details
