"""QuoteRedemption: whether a customer could redeem a reward for an order now.

It changes nothing (but creating a customer's account on their first quote,
as anything that reads it does), and tells nothing of other families' orders.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from customer_core.context import Context
from customer_core.db import reward_checks as checks_db
from customer_core.domain import names
from customer_core.domain.loyalty import tier_for, tier_window_start
from customer_core.domain.rewards import Ineligible, Reward, check_order_id, ineligibility
from customer_core.domain.wallet import needs_approval
from customer_core.errors import NotFound
from customer_core.telemetry import timed_query
from customer_core.usecases.loyalty import account_of, tier_rules


@dataclass(frozen=True)
class Quote:
    reward: Reward
    redeemable: bool
    reason: Ineligible | None
    balance_before: int
    balance_after: int


async def quote_redemption(
    ctx: Context, customer_id: uuid.UUID, reward_id: uuid.UUID, order_id: str
) -> Quote:
    """Whether the customer could redeem the reward for the order now; changes nothing.

    One statement reads it all (a quote is on the Order Service's path); only a
    customer's first quote, before they have an account, takes three.
    """
    check_order_id(order_id)
    now = datetime.now(UTC)
    rules = tier_rules(ctx)
    since = tier_window_start(now, rules)
    with timed_query("loyalty.quote"):
        async with ctx.pool.acquire() as conn:
            facts = await checks_db.quote_facts(conn, customer_id, reward_id, order_id, since)
            if facts is not None and not facts.deleted and facts.account is None:
                await account_of(conn, customer_id)  # as RedeemReward would
                facts = await checks_db.quote_facts(conn, customer_id, reward_id, order_id, since)
    if facts is None or facts.deleted:
        raise NotFound(names.customer_name(customer_id))
    reward, account = facts.reward, facts.account
    if reward is None:
        raise NotFound(names.reward_name(reward_id))
    if account is None:  # the customer vanished between the two statements
        raise NotFound(names.customer_name(customer_id))
    # Other families' redemptions of the order are not counted (no oracle);
    # redeeming still refuses an order taken anywhere.
    reason = ineligibility(
        reward,
        tier=tier_for(facts.window_points, rules),
        balance=account.balance,
        now=now,
        order_taken=facts.order_taken,
    )
    if reason is None and needs_approval(facts.role, account.pooled):
        reason = Ineligible.NEEDS_APPROVAL
    after = account.balance - reward.points_cost if reason is None else account.balance
    return Quote(reward, reason is None, reason, account.balance, after)
