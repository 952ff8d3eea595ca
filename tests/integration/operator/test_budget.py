"""Budgets under concurrent consumers: never overspent, granted in part at the edge."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from customer_core.context import Context
from customer_core.db import campaign_budgets as campaign_budgets_db
from customer_core.db import campaigns as db
from customer_core.domain.campaign_spec import campaign_from_spec
from customer_core.domain.campaigns import Award

from .conftest import SPEC


async def _insert(ctx: Context, name: str, budget: dict[str, Any]) -> uuid.UUID:
    spec = {**SPEC, "budget": budget}
    campaign = campaign_from_spec(f"coffee/{name}", spec, id=uuid.uuid4())
    async with ctx.pool.acquire() as conn:
        row = await db.insert_campaign(conn, "coffee", name, campaign, spec)
    return row.id


def _award(campaign_id: uuid.UUID, customer: uuid.UUID, points: int, n: int) -> Award:
    return Award(campaign_id, f"coffee/c-{campaign_id}", customer, f"order-{n}", points)


async def _reserve(ctx: Context, awards: list[Award]) -> list[Award]:
    async with ctx.pool.acquire() as conn, conn.transaction():
        granted = await campaign_budgets_db.reserve_budget(conn, awards)
        await asyncio.sleep(0)  # hold the lock a moment, as a consumer's other writes would
        return granted


async def test_total_budget_is_never_overspent_by_concurrent_transactions(ctx: Context) -> None:
    campaign_id = await _insert(ctx, "capped", {"totalPoints": 1000})
    customers = [uuid.uuid4() for _ in range(10)]
    tasks = [_reserve(ctx, [_award(campaign_id, customers[n % 10], 70, n)]) for n in range(40)]
    results = await asyncio.gather(*tasks)
    granted = [a.points for r in results for a in r]
    assert sum(granted) == 1000  # 40 x 70 = 2800 wanted; exactly the budget granted
    assert sorted(granted).count(70) == 14 and 1000 - 14 * 70 in granted  # one partial grant
    async with ctx.pool.acquire() as conn:
        row = await db.fetch_live(conn, "coffee", "capped")
        assert row is not None
        assert row.state.points_awarded == 1000
        assert row.budget_left == 0
        reached = await conn.fetchval(
            "SELECT count(*) FROM campaign_customer_awards WHERE campaign_id = $1", campaign_id
        )
        assert row.customers_reached == reached


async def test_per_customer_cap_holds_under_concurrency(ctx: Context) -> None:
    campaign_id = await _insert(ctx, "per-customer", {"perCustomerPoints": 150})
    alice, bob = uuid.uuid4(), uuid.uuid4()
    tasks = [
        _reserve(ctx, [_award(campaign_id, alice if n % 2 else bob, 40, n)]) for n in range(20)
    ]
    results = await asyncio.gather(*tasks)
    per_customer: dict[uuid.UUID, int] = {}
    for result in results:
        for award in result:
            per_customer[award.customer_id] = per_customer.get(award.customer_id, 0) + award.points
    assert per_customer == {alice: 150, bob: 150}
    async with ctx.pool.acquire() as conn:
        row = await db.fetch_live(conn, "coffee", "per-customer")
        assert row is not None and row.state.points_awarded == 300
        assert row.customers_reached == 2


async def test_a_rolled_back_transaction_gives_its_points_back(ctx: Context) -> None:
    campaign_id = await _insert(ctx, "rollback", {"totalPoints": 100})
    customer = uuid.uuid4()
    async with ctx.pool.acquire() as conn:
        try:
            async with conn.transaction():
                granted = await campaign_budgets_db.reserve_budget(
                    conn, [_award(campaign_id, customer, 80, 1)]
                )
                assert granted[0].points == 80
                raise RuntimeError("the consumer failed after reserving")
        except RuntimeError:
            pass
        granted = await campaign_budgets_db.reserve_budget(
            conn, [_award(campaign_id, customer, 100, 2)]
        )
        assert [a.points for a in granted] == [100]


async def test_awards_for_several_campaigns_in_one_order(ctx: Context) -> None:
    first = await _insert(ctx, "first", {"totalPoints": 10})
    second = await _insert(ctx, "second", {})
    customer = uuid.uuid4()
    awards = [_award(second, customer, 500, 1), _award(first, customer, 25, 1)]
    granted = await _reserve(ctx, awards)
    assert {a.campaign_id: a.points for a in granted} == {first: 10, second: 500}
    exhausted = await _reserve(ctx, [_award(first, customer, 5, 2)])
    assert exhausted == []


async def test_load_active_uses_the_given_instant(ctx: Context) -> None:
    await _insert(ctx, "window", {})
    async with ctx.pool.acquire() as conn:
        inside = await db.load_active(conn, datetime(2030, 1, 1, tzinfo=UTC))
        before = await db.load_active(conn, datetime(2019, 12, 31, 23, 59, tzinfo=UTC))
    assert [c.key for c in inside] == ["coffee/window"]
    assert before == []
