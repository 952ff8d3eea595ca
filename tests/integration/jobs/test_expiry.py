"""Point expiry: one entry per inactive account, never negative, idempotent."""

from __future__ import annotations

import asyncio

from customer_core.context import Context
from customer_core.domain.jobs import JobPolicy
from customer_core.usecases.jobs.expiry import expire_points
from tests.integration.jobs.conftest import NOW, add_account, add_customer, days, snapshot

LEDGER = "SELECT account_id, kind, points, source FROM loyalty_points ORDER BY id"
BALANCES = "SELECT id, balance, last_activity_at FROM loyalty_accounts ORDER BY id"
MISMATCH = """
SELECT count(*) FROM loyalty_accounts a
WHERE balance <> (SELECT coalesce(sum(points), 0) FROM loyalty_points p WHERE p.account_id = a.id)
"""


async def test_inactive_accounts_expire_once_and_active_ones_keep_their_points(
    ctx: Context, policy: JobPolicy
) -> None:
    async with ctx.pool.acquire() as conn:
        inactive = [
            await add_account(conn, await add_customer(conn), 100 + i, NOW - days(181))
            for i in range(20)
        ]
        active = await add_account(conn, await add_customer(conn), 500, NOW - days(179))
        never = await add_account(conn, await add_customer(conn), 0, NOW - days(400))

    outcome = await expire_points(ctx, policy, NOW)

    assert outcome.rows == 20
    assert outcome.detail == f"expired {sum(100 + i for i in range(20))} points in 20 accounts"
    async with ctx.pool.acquire() as conn:
        balances = {r["id"]: r["balance"] for r in await conn.fetch(BALANCES)}
        expires = await conn.fetch(
            "SELECT account_id, points, source FROM loyalty_points WHERE kind = 'expire'"
        )
        assert await conn.fetchval(MISMATCH) == 0
    assert all(balances[a] == 0 for a in inactive)
    assert balances[active] == 500 and balances[never] == 0
    assert sorted(r["account_id"] for r in expires) == sorted(inactive)
    assert all(r["source"] == "system" for r in expires)

    before = await snapshot(ctx, LEDGER, BALANCES)
    again = await expire_points(ctx, policy, NOW)
    assert again.rows == 0
    assert await snapshot(ctx, LEDGER, BALANCES) == before


async def test_two_copies_at_once_expire_each_account_once(ctx: Context) -> None:
    policy = JobPolicy(batch_size=3)
    async with ctx.pool.acquire() as conn:
        for _ in range(30):
            await add_account(conn, await add_customer(conn), 50, NOW - days(200))
    # No advisory lock here: the use case alone must not double an expiry.
    first, second = await asyncio.gather(
        expire_points(ctx, policy, NOW), expire_points(ctx, policy, NOW)
    )
    assert first.rows + second.rows == 30
    async with ctx.pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM loyalty_points WHERE kind = 'expire'") == 30
        )
        assert await conn.fetchval("SELECT sum(balance) FROM loyalty_accounts") == 0
        assert await conn.fetchval(MISMATCH) == 0
