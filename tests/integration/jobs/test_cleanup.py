"""Clean-up: old history archived, inbox pruned, deleted customers purged; totals unchanged."""

from __future__ import annotations

import uuid

from customer_core.context import Context
from customer_core.domain.jobs import JobPolicy
from customer_core.usecases.jobs.cleanup import clean_up
from customer_core.usecases.jobs.reconcile import reconcile
from customer_core.usecases.jobs.rollups import roll_up
from tests.integration.jobs.conftest import (
    NOW,
    add_account,
    add_customer,
    add_family,
    add_order,
    days,
    snapshot,
)

AGGREGATES = (
    "SELECT * FROM customer_stats_daily ORDER BY 1, 2",
    "SELECT * FROM customer_stats_weekly ORDER BY 1, 2",
    "SELECT * FROM family_stats_daily ORDER BY 1, 2",
    "SELECT * FROM family_stats_weekly ORDER BY 1, 2",
    "SELECT hour_of_week, orders FROM platform_peak_hours ORDER BY 1",
    "SELECT * FROM order_stats ORDER BY 1",
    "SELECT account_id, sum(points) FROM loyalty_points GROUP BY 1 ORDER BY 1",
    "SELECT id, balance, lifetime_points FROM loyalty_accounts ORDER BY 1",
    "SELECT count(*), sum(paid_minor), sum(points_earned) FROM order_history_all",
)


async def test_cleanup_keeps_aggregates_and_ledger_totals(ctx: Context) -> None:
    policy = JobPolicy(batch_size=4, history_retention_days=365, purge_grace_days=30)
    async with ctx.pool.acquire() as conn:
        family = await add_family(conn)
        keep, gone = await add_customer(conn, family), await add_customer(conn, family)
        await add_account(conn, gone, 300, NOW - days(10))
        await conn.execute(
            "INSERT INTO favorites (id, customer_id, drink_id, drink_name, customization_key,"
            " position) VALUES ($1, $2, 'latte', 'Latte', '', 0)",
            uuid.uuid4(),
            gone,
        )
        await conn.execute(
            "INSERT INTO order_stats (customer_id, order_count, total_spent_minor)"
            " VALUES ($1, 11, 5500)",
            keep,
        )
        old = [
            await add_order(
                conn,
                keep,
                family,
                NOW - days(400 + i),
                completed_at=NOW - days(400 + i),
                paid=500,
                points=50,
            )
            for i in range(10)
        ]
        recent = await add_order(conn, keep, family, NOW - days(5), paid=500)
        # Still open a year later? It is old all the same once its last event is.
        open_old = await add_order(conn, gone, family, NOW - days(500))
        for i in range(9):
            await conn.execute(
                'INSERT INTO processed_events (event_id, topic, partition, "offset",'
                " processed_at) VALUES ($1, 'order.placed', 0, $2, $3)",
                f"e{i}",
                i,
                NOW - days(40 if i < 6 else 1),
            )
        for key, age in (("old-key", 40), ("fresh-key", 1)):
            await conn.execute(
                "INSERT INTO idempotency_keys (key, method, request_hash, response, create_time)"
                " VALUES ($1, 'CreateCustomer', 'h', '', $2)",
                key,
                NOW - days(age),
            )
        await conn.execute(
            "UPDATE customers SET deleted_at = $2 WHERE id = $1", gone, NOW - days(31)
        )
        await conn.execute(
            "UPDATE customers SET deleted_at = $2 WHERE id = $1", keep, NOW - days(29)
        )
    await roll_up(ctx, policy, NOW)
    before = await snapshot(ctx, *AGGREGATES)
    checks_before = (await reconcile(ctx, policy, NOW)).findings

    outcome = await clean_up(ctx, policy, NOW)

    assert outcome.detail == (
        "archived 11 orders, pruned 6 inbox rows and 1 idempotency keys, purged 1 deleted customers"
    )
    assert await snapshot(ctx, *AGGREGATES) == before
    # A roll-up after the archive (history re-read from both tables) agrees too.
    async with ctx.pool.acquire() as conn:
        await conn.execute("UPDATE order_history SET update_time = now()")
        await conn.execute("DELETE FROM job_watermarks")
    await roll_up(ctx, policy, NOW)
    assert await snapshot(ctx, *AGGREGATES) == before
    async with ctx.pool.acquire() as conn:
        live = {r[0] for r in await conn.fetch("SELECT order_id FROM order_history")}
        archived = {r[0] for r in await conn.fetch("SELECT order_id FROM order_history_archive")}
        assert live == {recent}
        assert archived == {*old, open_old}
        assert await conn.fetchval("SELECT count(*) FROM processed_events") == 3
        kept = await conn.fetch("SELECT key FROM idempotency_keys")
        assert [r["key"] for r in kept] == ["fresh-key"]
        purged = await conn.fetchrow("SELECT * FROM customers WHERE id = $1", gone)
        assert purged["purged_at"] is not None
        assert (purged["username"], purged["display_name"], purged["email"]) == (None, None, None)
        assert purged["allergies"] == [] and purged["family_id"] == family
        assert (
            await conn.fetchval("SELECT count(*) FROM favorites WHERE customer_id = $1", gone) == 0
        )
        within_grace = await conn.fetchrow("SELECT * FROM customers WHERE id = $1", keep)
        assert within_grace["purged_at"] is None and within_grace["email"] == "pat@example.com"
    # Reconciliation still sees the archived orders (they earned nothing here).
    assert (await reconcile(ctx, policy, NOW)).findings == checks_before
    assert checks_before[2].count == 10

    again = await clean_up(ctx, policy, NOW)
    assert again.rows == 0
    assert await snapshot(ctx, *AGGREGATES) == before
