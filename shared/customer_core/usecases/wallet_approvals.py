"""Child approvals and weekly caps at spending time (the family wallet's controls).

RedeemReward asks `spending_controls` inside its own transaction, after
locking the account it spends from, and for a child of a pooled family records
a pending approval instead of a hold. `approve` places the hold later under
the same account lock, so approvals and other spenders queue on one row and
never overspend the pool between them. Lock order: the child's event lock,
account, approval row, redemption row (the global order, docs/wallet.md; the
expiry job takes approval then redemption, skipping locked ones).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from customer_core import notices
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import accounts as accounts_db
from customer_core.db import customers as customers_db
from customer_core.db import families as families_db
from customer_core.db import inbox as inbox_db
from customer_core.db import loyalty as loyalty_db
from customer_core.db import redemptions as redemptions_db
from customer_core.db import rewards as rewards_db
from customer_core.db import wallet as db
from customer_core.domain import names, paging
from customer_core.domain.customers import Customer
from customer_core.domain.loyalty import Account, tier_for, tier_window_start
from customer_core.domain.rewards import Ineligible, Redemption, Reward, ineligibility
from customer_core.domain.wallet import Approval, needs_approval, over_cap, week_start
from customer_core.errors import (
    FailedPrecondition,
    InsufficientPoints,
    LimitExceeded,
    NotFound,
)
from customer_core.telemetry import timed_query
from customer_core.usecases import balances, idempotency
from customer_core.usecases.contention import retried_once
from customer_core.usecases.loyalty import (
    after_change,
    check_order_open,
    check_reason,
    redeem_entry,
    tier_rules,
)
from customer_core.usecases.replies import DataclassCodec
from customer_core.usecases.wallet import WALLET_CHANGED, decider

# ---- Spending controls (inside RedeemReward's transaction) ---------------------------


async def spending_controls(
    conn: Conn, customer: Customer, account: Account, reward: Reward, now: datetime
) -> bool:
    """Refuse a redemption past the member's weekly cap (LimitExceeded); True when
    an adult must approve it first. The caller holds the account's lock."""
    cap = await db.fetch_cap(conn, customer.id)
    if cap is not None:
        spent = await db.spent_since(conn, customer.id, week_start(now))
        if over_cap(cap, spent, reward.points_cost):
            raise LimitExceeded(
                f"{names.customer_name(customer.id)} may redeem {cap} points a week; "
                f"{spent} already this week, {names.reward_name(reward.id)} costs "
                f"{reward.points_cost}"
            )
    return needs_approval(customer.role, account.pooled)


async def request_approval(
    conn: Conn, ctx: Context, r: Redemption, customer: Customer, now: datetime
) -> None:
    """Record a child's pending redemption; it expires like an uncaptured hold would."""
    expires = now + timedelta(seconds=ctx.settings.loyalty.hold_seconds)
    await db.insert_approval(conn, Approval(r.id, customer.family_id, customer.id, expires))


# ---- Approvals ------------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    redemption: Redemption
    approval: Approval
    reward: Reward


DECIDED = DataclassCodec(Decided)


async def _pending(conn: Conn, redemption_id: uuid.UUID) -> tuple[Redemption, Approval]:
    """The redemption and its approval, the approval row locked (before the redemption's)."""
    approval = await db.lock_approval(conn, redemption_id)
    r = await rewards_db.fetch_redemption(conn, redemption_id, lock=True)
    if r is None:
        raise NotFound(names.redemption_name(redemption_id))
    if approval is None:
        raise FailedPrecondition(f"{names.redemption_name(r.id)} does not need approval")
    return r, approval


def _refused(decision: str, r: Redemption) -> FailedPrecondition:
    return FailedPrecondition(f"{names.redemption_name(r.id)} was {decision}")


@retried_once
async def approve(
    ctx: Context, redemption_id: uuid.UUID, approver_id: uuid.UUID, key: str
) -> Decided:
    """Place the hold of a child's pending redemption; again answers it as it is
    (with a key: as the first call answered, whatever happened to it since)."""
    call = idempotency.Call.of(key, "ApproveRedemption", f"{redemption_id}:{approver_id}".encode())
    now = datetime.now(UTC)
    expired: Decided | None = None
    with timed_query("wallet.approve"):
        async with ctx.pool.acquire() as conn, conn.transaction():
            stored = await idempotency.begin(conn, call)
            if stored is not None:
                return DECIDED.decode(stored)
            peek = await rewards_db.fetch_redemption(conn, redemption_id)
            if peek is None:
                raise NotFound(names.redemption_name(redemption_id))
            # The child's event lock before the account, as the consumer takes them.
            await inbox_db.lock_member(conn, peek.customer_id)
            account = await accounts_db.lock_account(conn, peek.account_id)
            r, approval = await _pending(conn, redemption_id)
            await decider(conn, approver_id, approval.family_id)
            reward = await rewards_db.fetch_reward(conn, r.reward_id)
            assert reward is not None  # rewards are never deleted
            if approval.decision == "approved":
                done = Decided(r, approval, reward)
                await idempotency.finish(conn, call, DECIDED.encode(done))
                return done
            if approval.decision is not None:
                # Ended because its order finished (the consumer ends those): say so.
                await check_order_open(conn, r.order_id)
                raise _refused(approval.decision, r)
            if now >= approval.expires_at:
                # Too late: recorded as expired (committed), then refused below.
                r = await redemptions_db.end_pending(conn, r.id, "expired")
                await db.decide(conn, r.id, "expired", None)
                expired = Decided(r, approval, reward)
            else:
                await check_order_open(conn, r.order_id)
                await _check_still_redeemable(conn, ctx, account, reward, now)
                hold_until = now + timedelta(seconds=ctx.settings.loyalty.hold_seconds)
                r = await redemptions_db.place_hold(
                    conn, r.id, hold_until, account.balance - r.points
                )
                await loyalty_db.post_entries(conn, [redeem_entry(r, reward)])
                await db.decide(conn, r.id, "approved", approver_id)
                members = list(await balances.viewers(conn, [account.id]))
                child = await customers_db.fetch_customer(conn, r.customer_id)
                decided = Approval(
                    **{**approval.__dict__, "decision": "approved", "decided_by": approver_id}
                )
                done = Decided(r, decided, reward)
                await idempotency.finish(conn, call, DECIDED.encode(done))
    if expired is not None:
        await _announce_end(ctx, expired.redemption, approval.family_id)
        raise _refused("expired", expired.redemption)
    if child is not None:
        await after_change(ctx, members, child, "reward_redeemed", r)
    return done


async def _check_still_redeemable(
    conn: Conn, ctx: Context, account: Account, reward: Reward, now: datetime
) -> None:
    rules = tier_rules(ctx)
    tier = tier_for(
        await accounts_db.window_points(conn, account.id, tier_window_start(now, rules)), rules
    )
    why = ineligibility(reward, tier=tier, balance=account.balance, now=now, order_taken=False)
    if why is Ineligible.INSUFFICIENT_POINTS:
        raise InsufficientPoints(
            f"{names.reward_name(reward.id)} costs {reward.points_cost} points; "
            f"the family wallet has {account.balance}"
        )
    if why is not None:
        raise FailedPrecondition(f"{names.reward_name(reward.id)} cannot be redeemed now: {why}")


@retried_once
async def decline(
    ctx: Context, redemption_id: uuid.UUID, approver_id: uuid.UUID, reason: str, key: str
) -> Decided:
    """End a child's pending redemption without moving points; again is a no-op
    (with a key: it answers as the first call did)."""
    why = check_reason(reason, required=False)
    call = idempotency.Call.of(
        key, "DeclineRedemption", f"{redemption_id}:{approver_id}:{why}".encode()
    )
    with timed_query("wallet.decline"):
        async with ctx.pool.acquire() as conn, conn.transaction():
            stored = await idempotency.begin(conn, call)
            if stored is not None:
                return DECIDED.decode(stored)
            r, approval = await _pending(conn, redemption_id)
            await decider(conn, approver_id, approval.family_id)
            reward = await rewards_db.fetch_reward(conn, r.reward_id)
            assert reward is not None
            if approval.decision == "declined":
                done = Decided(r, approval, reward)
                await idempotency.finish(conn, call, DECIDED.encode(done))
                return done
            if approval.decision is not None:
                raise _refused(approval.decision, r)
            r = await redemptions_db.end_pending(conn, r.id, "declined")
            await db.decide(conn, r.id, "declined", approver_id, why)
            decided = Approval(
                **{**approval.__dict__, "decision": "declined", "decided_by": approver_id}
            )
            done = Decided(r, decided, reward)
            await idempotency.finish(conn, call, DECIDED.encode(done))
    await _announce_end(ctx, r, approval.family_id)
    return done


async def _announce_end(ctx: Context, r: Redemption, family_id: uuid.UUID) -> None:
    # No balance moved, but the child's order context and the family's feed did.
    await ctx.cache.invalidate(r.customer_id)
    await notices.publish(
        ctx.valkey,
        [notices.Notice(r.customer_id, family_id, frozenset({notices.POINTS}))],
        [
            notices.Activity(
                kind=WALLET_CHANGED,
                customer_id=r.customer_id,
                family_id=family_id,
                order_id=r.order_id,
                reward_id=r.reward_id,
            )
        ],
    )


@dataclass(frozen=True)
class PendingPage:
    pending: list[tuple[Redemption, Approval]]
    next_page_token: str


async def list_pending(ctx: Context, family_id: uuid.UUID, size: int, token: str) -> PendingPage:
    """The family's redemptions waiting for an adult, oldest first."""
    limit = paging.page_size(size)
    query = f"approvals:{family_id}"
    secret = ctx.settings.page_token_key
    after = paging.decode_token(secret, query, token, (paging.Part.TIME, paging.Part.UUID))
    async with ctx.pool.acquire() as conn:
        if not await families_db.family_exists(conn, family_id):
            raise NotFound(names.family_name(family_id))
        rows = await db.list_pending(conn, family_id, after, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    next_token = (
        paging.encode_token(secret, query, [last[2].isoformat(), str(last[0].id)])
        if more and last
        else ""
    )
    return PendingPage([(r, a) for r, a, _ in page], next_token)


async def expire_approvals(ctx: Context, now: datetime, batch: int = 1000) -> int:
    """Pending approvals past their time become expired (no points had moved); how many."""
    total = 0
    while True:
        async with ctx.pool.acquire() as conn, conn.transaction():
            done = await db.expire_due(conn, now, batch)
        total += len(done)
        for r, family_id in done:
            await _announce_end(ctx, r, family_id)
        if len(done) < batch:
            return total
