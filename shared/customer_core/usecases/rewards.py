"""Rewards and redemption holds: the catalogue, quotes, RedeemReward, reversal, timeouts.

A redemption locks the customer's account first (see `usecases.loyalty`), so
concurrent redemptions queue on it and exactly as many succeed as the balance
covers. Its idempotency key is unique in `redemptions`, written in the same
transaction as the hold and its `redeem` entry.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import accounts as accounts_db
from customer_core.db import customers as customers_db
from customer_core.db import inbox as inbox_db
from customer_core.db import loyalty as db
from customer_core.db import redemptions as redemptions_db
from customer_core.db import reward_checks as checks_db
from customer_core.db import rewards as rewards_db
from customer_core.domain import names, paging
from customer_core.domain.loyalty import tier_for, tier_window_start
from customer_core.domain.rewards import (
    RETURNED_STATES,
    Ineligible,
    Redemption,
    RedemptionState,
    Reward,
    check_order_id,
    ineligibility,
    offered_to,
    request_digest,
)
from customer_core.errors import (
    FailedPrecondition,
    IdempotencyConflict,
    InsufficientPoints,
    NotFound,
)
from customer_core.telemetry import timed_query
from customer_core.usecases import balances, idempotency, wallet_approvals
from customer_core.usecases.contention import retried_once
from customer_core.usecases.idempotency import check_key
from customer_core.usecases.loyalty import (
    account_of,
    after_change,
    check_open,
    check_reason,
    live_customer,
    redeem_entry,
    summary_on,
    tier_rules,
)
from customer_core.usecases.replies import DataclassCodec

REVERSED = DataclassCodec(Redemption)


@dataclass(frozen=True)
class RewardPage:
    rewards: list[Reward]
    next_page_token: str


async def list_rewards(
    ctx: Context, customer_id: uuid.UUID | None, size: int, token: str
) -> RewardPage:
    """The active catalogue cheapest first; with a customer, only what they can redeem now."""
    limit = paging.page_size(size)
    query = f"rewards:{customer_id or ''}"
    secret = ctx.settings.page_token_key
    after = paging.decode_token(secret, query, token, (paging.Part.INT64, paging.Part.UUID))
    with timed_query("loyalty.list_rewards"):
        async with ctx.pool.acquire() as conn:
            if customer_id is None:
                rows = await rewards_db.list_rewards(conn, after, limit + 1)
            else:
                rows = await _redeemable(conn, ctx, customer_id, after)
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    next_token = (
        paging.encode_token(secret, query, [last.points_cost, str(last.id)])
        if more and last
        else ""
    )
    return RewardPage(page, next_token)


async def _redeemable(
    conn: Conn, ctx: Context, customer_id: uuid.UUID, after: tuple[int, uuid.UUID] | None
) -> list[Reward]:
    await live_customer(conn, customer_id)
    now = datetime.now(UTC)
    summary = await summary_on(conn, ctx, customer_id, await account_of(conn, customer_id), now)
    return [
        r
        for r in await rewards_db.list_available_rewards(conn, now)
        if offered_to(r, summary.tier, now)
        and r.points_cost <= summary.account.balance
        and (after is None or (r.points_cost, r.id) > after)
    ]


async def _reward(conn: Conn, reward_id: uuid.UUID) -> Reward:
    reward = await rewards_db.fetch_reward(conn, reward_id)
    if reward is None:
        raise NotFound(names.reward_name(reward_id))
    return reward


@dataclass(frozen=True)
class Redeemed:
    redemption: Redemption
    reward: Reward
    replayed: bool


REDEEMED = DataclassCodec(Redeemed)


def _refusal(reason: Ineligible, reward: Reward, balance: int, order_id: str) -> Exception:
    if reason is Ineligible.INSUFFICIENT_POINTS:
        return InsufficientPoints(
            f"{names.reward_name(reward.id)} costs {reward.points_cost} points; "
            f"the balance is {balance}"
        )
    why = {
        Ineligible.NOT_AVAILABLE: "is not available now",
        Ineligible.TIER_TOO_LOW: f"needs tier {reward.min_tier} or above",
        Ineligible.ALREADY_REDEEMED_FOR_ORDER: f"cannot be added: order {order_id!r} "
        "already has a reward",
    }.get(reason, reason.value)
    return FailedPrecondition(f"{names.reward_name(reward.id)} {why}")


@retried_once
async def redeem_reward(
    ctx: Context, customer_id: uuid.UUID, reward_id: uuid.UUID, order_id: str, key: str
) -> Redeemed:
    """Hold the reward's points against the order (see the module doc for concurrency)."""
    check_order_id(order_id)
    check_key(key)
    call = idempotency.Call.of(
        key, "RedeemReward", f"{customer_id}:{reward_id}:{order_id}".encode()
    )
    digest = request_digest(customer_id, reward_id, order_id)
    now = datetime.now(UTC)
    rules = tier_rules(ctx)
    with timed_query("loyalty.redeem"):
        async with ctx.pool.acquire() as conn, conn.transaction():
            # The first answer as it was (the redemption may have moved on since).
            stored = await idempotency.begin(conn, call)
            if stored is not None:
                return dataclasses.replace(REDEEMED.decode(stored), replayed=True)
            customer = await live_customer(conn, customer_id)
            reward = await _reward(conn, reward_id)
            # Before the account, as the consumer's batch takes them.
            await inbox_db.lock_member(conn, customer_id)
            account = await accounts_db.lock_account(conn, (await account_of(conn, customer_id)).id)
            # Every read under the lock in one statement (db/reward_checks.py).
            facts = await checks_db.redeem_facts(
                conn, key, order_id, account.id, tier_window_start(now, rules)
            )
            first = _same_request(facts.first, key, digest)
            if first is not None:
                return Redeemed(first, reward, replayed=True)
            check_open(order_id, facts.finished)
            reason = ineligibility(
                reward,
                tier=tier_for(facts.window_points, rules),
                balance=account.balance,
                now=now,
                order_taken=facts.order_taken,
            )
            if reason is not None:
                raise _refusal(reason, reward, account.balance, order_id)
            # The family wallet's controls: a weekly cap, a child's pending approval.
            pending = await wallet_approvals.spending_controls(conn, customer, account, reward, now)
            hold = Redemption(
                id=uuid.uuid4(),
                account_id=account.id,
                customer_id=customer_id,
                reward_id=reward_id,
                order_id=order_id,
                points=reward.points_cost,
                state=RedemptionState.PENDING_APPROVAL if pending else RedemptionState.HELD,
                request_hash=digest,
                hold_expires_at=None
                if pending
                else now + timedelta(seconds=ctx.settings.loyalty.hold_seconds),
                balance_after=account.balance - (0 if pending else reward.points_cost),
            )
            inserted = await rewards_db.insert_redemption(conn, hold, key)
            if inserted is None:
                # Raced by a caller outside this account's lock: same key, or same order.
                first = await _replay(conn, key, digest)
                if first is not None:
                    return Redeemed(first, reward, replayed=True)
                raise _refusal(Ineligible.ALREADY_REDEEMED_FOR_ORDER, reward, 0, order_id)
            if pending:
                await wallet_approvals.request_approval(conn, ctx, inserted, customer, now)
            else:
                await db.post_entries(conn, [redeem_entry(inserted, reward)])
            members = list(await balances.viewers(conn, [account.id]))
            done = Redeemed(inserted, reward, replayed=False)
            await idempotency.finish(conn, call, REDEEMED.encode(done))
    kind = "wallet_changed" if pending else "reward_redeemed"
    await after_change(ctx, members, customer, kind, inserted)
    return done


async def _replay(conn: Conn, key: str, digest: str) -> Redemption | None:
    return _same_request(await rewards_db.fetch_redemption_by_key(conn, key), key, digest)


def _same_request(first: Redemption | None, key: str, digest: str) -> Redemption | None:
    """The redemption made before with `key`, if any; the key reused for another request
    is refused."""
    if first is not None and first.request_hash != digest:
        raise IdempotencyConflict(key)
    return first


@retried_once
async def reverse_redemption(
    ctx: Context, redemption_id: uuid.UUID, reason: str, key: str
) -> Redemption:
    """Release a held redemption or refund a captured one; again is a no-op (with a
    key: it answers as the first call did).

    Locks the account before the redemption row, the order every path takes."""
    why = check_reason(reason, required=False) or "reversed on request"
    call = idempotency.Call.of(key, "ReverseRedemption", f"{redemption_id}:{why}".encode())
    with timed_query("loyalty.reverse"):
        async with ctx.pool.acquire() as conn, conn.transaction():
            stored = await idempotency.begin(conn, call)
            if stored is not None:
                return REVERSED.decode(stored)
            peek = await rewards_db.fetch_redemption(conn, redemption_id)
            if peek is None:
                raise NotFound(names.redemption_name(redemption_id))
            await accounts_db.lock_account(
                conn, peek.account_id
            )  # a redemption never moves account
            r = await rewards_db.fetch_redemption(conn, redemption_id, lock=True)
            if r is None:
                raise NotFound(names.redemption_name(redemption_id))
            if r.state in RETURNED_STATES:
                await idempotency.finish(conn, call, REVERSED.encode(r))
                return r
            if r.state not in (RedemptionState.HELD, RedemptionState.CAPTURED):
                raise FailedPrecondition(
                    f"{names.redemption_name(r.id)} is {r.state.value}: nothing to reverse"
                )
            changed = await redemptions_db.release_redemption(conn, r, why)
            await idempotency.finish(conn, call, REVERSED.encode(changed))
            customer = await customers_db.fetch_customer(conn, r.customer_id)
            members = list(await balances.viewers(conn, [r.account_id]))
    if customer is not None:
        await after_change(ctx, members, customer, "reward_reversed", changed)
    return changed
