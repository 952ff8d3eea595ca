"""Loyalty accounts and the ledger: the account view, its history, adjustments.

Rewards and redemption holds are in `usecases.rewards`. Spending paths
(RedeemReward, AdjustPoints) lock the account row first, so
concurrent spenders queue on it and each sees the balance the previous one
left: exactly as many succeed as the balance covers, with a clean
InsufficientPoints for the rest (the balance CHECK is only the backstop).
Idempotency lives with the effect: a redemption's key is unique in
`redemptions`, an adjustment's in the ledger (`adjust:{key}`), both written in
the same transaction as the points. After commit, every member whose balance
view changed gets a cache bump and a notice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from customer_core import notices
from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import accounts as accounts_db
from customer_core.db import customers as customers_db
from customer_core.db import loyalty as db
from customer_core.db import rewards as rewards_db
from customer_core.db import wallet as wallet_db
from customer_core.domain import names, paging
from customer_core.domain.customers import Customer
from customer_core.domain.loyalty import (
    Account,
    AccountSummary,
    LedgerEntry,
    PostedEntry,
    TierRules,
    summarize,
    tier_window_start,
)
from customer_core.domain.rewards import Redemption, Reward
from customer_core.errors import (
    FailedPrecondition,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidArgument,
    NotFound,
)
from customer_core.telemetry import timed_query
from customer_core.usecases import balances, idempotency
from customer_core.usecases.contention import retried_once
from customer_core.usecases.idempotency import check_key
from customer_core.usecases.replies import DataclassCodec

MAX_REASON = 200


def redeem_entry(r: Redemption, reward: Reward) -> LedgerEntry:
    """The `redeem` entry of a hold: the same entry and key whether or not a guardian approved."""
    return LedgerEntry(
        account_id=r.account_id,
        member_id=r.customer_id,
        kind="redeem",
        points=-r.points,
        reason=f"{reward.display_name} for order {r.order_id}"[:MAX_REASON],
        source="reward",
        source_ref=names.redemption_name(r.id),
        idempotency_key=f"redemption:{r.id}:redeem",
    )


MAX_ADJUST = 10_000_000
ADJUSTED = DataclassCodec(PostedEntry)


def tier_rules(ctx: Context) -> TierRules:
    s = ctx.settings.loyalty
    return TierRules(s.gold_points, s.reserve_points, s.tier_window_days)


async def live_customer(conn: Conn, customer_id: uuid.UUID) -> Customer:
    customer = await customers_db.fetch_customer(conn, customer_id)
    if customer is None or customer.deleted:
        raise NotFound(names.customer_name(customer_id))
    return customer


async def account_of(conn: Conn, customer_id: uuid.UUID) -> Account:
    account = await accounts_db.account_for_customer(conn, customer_id)
    if account is None:
        raise NotFound(names.customer_name(customer_id))
    return account


async def summary_on(
    conn: Conn, ctx: Context, customer_id: uuid.UUID, account: Account, now: datetime
) -> AccountSummary:
    rules = tier_rules(ctx)
    held = await db.held_points(conn, account.id)
    window = await accounts_db.window_points(conn, account.id, tier_window_start(now, rules))
    contribution = (
        await wallet_db.contribution(conn, account.id, customer_id) if account.pooled else 0
    )
    return summarize(
        account,
        held=held,
        window_points=window,
        rules=rules,
        expiry_days=ctx.settings.loyalty.expiry_days,
        member_contribution=contribution,
    )


async def get_account(ctx: Context, customer_id: uuid.UUID) -> AccountSummary:
    with timed_query("loyalty.get_account"):
        async with ctx.pool.acquire() as conn:
            await live_customer(conn, customer_id)
            account = await account_of(conn, customer_id)
            return await summary_on(conn, ctx, customer_id, account, datetime.now(UTC))


@dataclass(frozen=True)
class EntryPage:
    entries: list[PostedEntry]
    next_page_token: str


async def list_transactions(
    ctx: Context, customer_id: uuid.UUID, size: int, token: str
) -> EntryPage:
    """The account's ledger newest first (a pooled wallet's: every member's entries)."""
    limit = paging.page_size(size)
    query = f"ledger:{customer_id}"
    secret = ctx.settings.page_token_key
    key = paging.decode_token(secret, query, token, (paging.Part.INT64,))
    with timed_query("loyalty.list_transactions"):
        async with ctx.pool.acquire() as conn:
            await live_customer(conn, customer_id)
            account = await account_of(conn, customer_id)
            rows = await db.list_entries(conn, account.id, key[0] if key else None, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return EntryPage(page, paging.encode_token(secret, query, [page[-1].id]) if more else "")


async def after_change(
    ctx: Context,
    members: list[uuid.UUID],
    customer: Customer,
    kind: str,
    r: Redemption | None = None,
    points: int = 0,
) -> None:
    await ctx.cache.invalidate(*members)
    activity = notices.Activity(
        kind=kind,
        customer_id=customer.id,
        family_id=customer.family_id,
        order_id=r.order_id if r else "",
        points=points or (r.points if r else 0),
        reward_id=r.reward_id if r else None,
    )
    changed = frozenset({notices.POINTS})
    await notices.publish(
        ctx.valkey, [notices.Notice(m, customer.family_id, changed) for m in members], [activity]
    )


async def check_order_open(conn: Conn, order_id: str) -> None:
    """A reward is held against an order until its completion captures it: an order
    already completed or cancelled would keep the hold forever, so it is refused.

    The caller holds the customer's event lock (`inbox_db.lock_member`, taken
    before the account's, as the consumer takes them), so no batch completing
    the order commits between this check and the hold."""
    check_open(order_id, await rewards_db.order_finished(conn, order_id))


def check_open(order_id: str, finished: str | None) -> None:
    """Refuses an order whose events finished it (`finished`: 'completed' or 'cancelled')."""
    if finished is not None:
        raise FailedPrecondition(
            f"order {order_id!r} is already {finished}: a reward can only be applied "
            "to an order still in progress"
        )


def check_reason(reason: str, *, required: bool) -> str:
    reason = reason.strip()
    if required and not reason:
        raise InvalidArgument("reason", f"required, 1..{MAX_REASON} characters")
    if len(reason) > MAX_REASON:
        raise InvalidArgument("reason", f"at most {MAX_REASON} characters, got {len(reason)}")
    if not reason.isprintable():
        raise InvalidArgument("reason", "must be printable text (no control characters)")
    return reason


@retried_once
async def adjust_points(
    ctx: Context, customer_id: uuid.UUID, points: int, reason: str, key: str
) -> PostedEntry:
    """An operator's correction; never takes a balance below zero."""
    if points == 0 or abs(points) > MAX_ADJUST:
        raise InvalidArgument("points", f"must be non-zero and within ±{MAX_ADJUST}")
    why = check_reason(reason, required=True)
    check_key(key)
    # Stored with the other methods' keys too, so a key is one request across methods.
    call = idempotency.Call.of(key, "AdjustPoints", f"{customer_id}:{points}:{why}".encode())
    ledger_key = f"adjust:{key}"
    with timed_query("loyalty.adjust"):
        async with ctx.pool.acquire() as conn, conn.transaction():
            stored = await idempotency.begin(conn, call)
            if stored is not None:
                return ADJUSTED.decode(stored)
            customer = await live_customer(conn, customer_id)
            account = await accounts_db.lock_account(conn, (await account_of(conn, customer_id)).id)
            first = await db.fetch_entry_by_key(conn, ledger_key)
            if first is not None:
                same = (first.account_id, first.member_id, first.points, first.reason)
                if same != (account.id, customer_id, points, why):
                    raise IdempotencyConflict(key)
                return first
            if account.balance + points < 0:
                raise InsufficientPoints(
                    f"an adjustment of {points} would take the balance {account.balance} below zero"
                )
            entry = LedgerEntry(
                account.id, customer_id, "adjust", points, why, "operator", None, None, ledger_key
            )
            (posted,) = await db.post_entries(conn, [entry])
            # The reason is in it: cleared when the customer is erased.
            owner = idempotency.Owner(customer_id=customer_id)
            await idempotency.finish(conn, call, ADJUSTED.encode(posted), owner)
            members = list(await balances.viewers(conn, [account.id]))
    await after_change(ctx, members, customer, "points_adjusted", points=points)
    return posted
