"""The Order Service's hot path: ValidateCustomer and GetOrderContext.

Both are cache-aside on Valkey: a hit costs one Valkey round trip and no
database work. Values are cached already encoded (the api passes `encode`),
so a hit hands back bytes without rebuilding anything. Correctness after
writes comes from the cache's generation keys: every write to a profile,
favorite or balance bumps the customer's generation after it commits, and a
reader stores what it read only under the generation it saw before reading.
Time-dependent parts (a reward's window opening, the tier window sliding) may
lag by at most CACHE_TTL_SECONDS.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from customer_core.context import Context
from customer_core.db import accounts as accounts_db
from customer_core.db import customers as customers_db
from customer_core.db import favorites as favorites_db
from customer_core.db import rewards as rewards_db
from customer_core.domain import names
from customer_core.domain.customers import Customer, Role
from customer_core.domain.favorites import Favorite
from customer_core.domain.loyalty import Tier, tier_for, tier_window_start
from customer_core.domain.rewards import Reward, offered_to
from customer_core.errors import NotFound
from customer_core.telemetry import timed_query
from customer_core.usecases.loyalty import tier_rules

VALIDATION_KIND = "validate"
CONTEXT_KIND = "order_ctx"


@dataclass(frozen=True)
class Validation:
    customer: Customer | None
    invalid_reason: str | None  # None when valid; "not_found" or "deleted"


@dataclass(frozen=True)
class OrderContext:
    customer: Customer
    usual: Favorite | None
    balance: int
    tier: Tier
    # Each reward the customer can redeem now, and whether an adult must approve it.
    rewards: list[tuple[Reward, bool]]
    pooled: bool


async def validate_customer(
    ctx: Context, customer_id: uuid.UUID, encode: Callable[[Validation], bytes]
) -> bytes:
    """Whether the customer may order, encoded; unknown and deleted are answers, not errors."""
    # What this replica holds is answered without a further await: the hot path.
    held = ctx.cache.held(VALIDATION_KIND, customer_id)
    if held is not None:
        return held

    async def load() -> bytes:
        with timed_query("orders.validate"):
            async with ctx.pool.acquire() as conn:
                customer = await customers_db.fetch_customer(conn, customer_id)
        if customer is None:
            return encode(Validation(None, "not_found"))
        return encode(Validation(customer, "deleted" if customer.deleted else None))

    return await ctx.cache.fetch(VALIDATION_KIND, customer_id, load)


async def order_context(
    ctx: Context, customer_id: uuid.UUID, encode: Callable[[OrderContext], bytes]
) -> bytes:
    """Profile, usual order, balance, tier and redeemable rewards, encoded."""
    held = ctx.cache.held(CONTEXT_KIND, customer_id)
    if held is not None:
        return held

    async def load() -> bytes:
        with timed_query("orders.context"):
            return encode(await _load_context(ctx, customer_id))

    return await ctx.cache.fetch(CONTEXT_KIND, customer_id, load)


async def _load_context(ctx: Context, customer_id: uuid.UUID) -> OrderContext:
    now = datetime.now(UTC)
    rules = tier_rules(ctx)
    # No snapshot transaction: a read racing a write may mix before and after,
    # but the write bumps the generation, so that mix is never served again.
    async with ctx.pool.acquire() as conn:
        customer = await customers_db.fetch_customer(conn, customer_id)
        if customer is None or customer.deleted:
            raise NotFound(names.customer_name(customer_id))
        account = await accounts_db.account_for_customer(conn, customer_id)
        assert account is not None  # the customer exists
        usual = await favorites_db.fetch_usual(conn, customer_id)
        window = await accounts_db.window_points(conn, account.id, tier_window_start(now, rules))
        catalogue = await rewards_db.list_available_rewards(conn, now)
    tier = tier_for(window, rules)
    needs_approval = account.pooled and customer.role is Role.CHILD
    rewards = [
        (r, needs_approval)
        for r in catalogue
        if offered_to(r, tier, now) and r.points_cost <= account.balance
    ]
    return OrderContext(customer, usual, account.balance, tier, rewards, account.pooled)
