"""Roll-ups: each period's figures, idempotence, late events and the watermark."""

from __future__ import annotations

from datetime import date, timedelta

from customer_core.context import Context
from customer_core.domain.jobs import JobPolicy
from customer_core.usecases.jobs.rollups import roll_up
from tests.integration.jobs.conftest import NOW, add_customer, add_family, add_order, snapshot

TABLES = (
    "SELECT * FROM customer_stats_daily ORDER BY 1, 2",
    "SELECT * FROM customer_stats_weekly ORDER BY 1, 2",
    "SELECT * FROM family_stats_daily ORDER BY 1, 2",
    "SELECT * FROM family_stats_weekly ORDER BY 1, 2",
    "SELECT hour_of_week, orders FROM platform_peak_hours ORDER BY 1",
)


async def test_rollup_figures_per_customer_family_week_and_hour(
    ctx: Context, policy: JobPolicy
) -> None:
    async with ctx.pool.acquire() as conn:
        family = await add_family(conn)
        ann, bob = await add_customer(conn, family), await add_customer(conn, family)
        monday = NOW - timedelta(days=2)  # 2025-06-09 12:00, a Monday
        await add_order(conn, ann, family, monday, completed_at=monday, paid=450, points=45)
        await add_order(conn, ann, family, monday + timedelta(hours=1), cancelled_at=monday)
        await add_order(conn, bob, family, NOW, completed_at=NOW, paid=300, points=30)
        # Seen completed before placed: counts on its completion day for now.
        await add_order(conn, bob, family, None, completed_at=NOW, paid=100, points=10)

    outcome = await roll_up(ctx, policy, NOW)

    assert outcome.rows == 2  # customer-days: ann on Monday, bob on Wednesday
    daily, weekly, fam_daily, fam_weekly, peaks = await snapshot(ctx, *TABLES)
    assert sorted(r[1:] for r in daily if r[0] == ann) == [(date(2025, 6, 9), 2, 1, 1, 450, 45)]
    assert sorted(r[1:] for r in daily if r[0] == bob) == [(date(2025, 6, 11), 2, 2, 0, 400, 40)]
    assert [r[1:] for r in weekly if r[0] == ann] == [(date(2025, 6, 9), 2, 1, 1, 450, 45)]
    assert [r[1:] for r in weekly if r[0] == bob] == [(date(2025, 6, 9), 2, 2, 0, 400, 40)]
    assert [r[1:] for r in fam_daily] == [
        (date(2025, 6, 9), 2, 1, 1, 450, 45),
        (date(2025, 6, 11), 2, 2, 0, 400, 40),
    ]
    assert [r[1:] for r in fam_weekly] == [(date(2025, 6, 9), 4, 3, 1, 850, 85)]
    # Monday 12:00 and 13:00; Wednesday 12:00 (the order never placed is not a peak).
    assert peaks == [(12, 1), (13, 1), (2 * 24 + 12, 1)]


async def test_rerun_gives_same_result_and_late_events_are_picked_up(
    ctx: Context, policy: JobPolicy
) -> None:
    async with ctx.pool.acquire() as conn:
        customer = await add_customer(conn)
        late = await add_order(conn, customer, None, None, completed_at=NOW, paid=100)
        for i in range(20):
            await add_order(conn, customer, None, NOW - timedelta(days=i), paid=10)
    await roll_up(ctx, policy, NOW)
    first = await snapshot(ctx, *TABLES)

    second = await roll_up(ctx, policy, NOW)
    assert await snapshot(ctx, *TABLES) == first
    # The overlap re-reads recent rows; recomputing them changes nothing.
    assert second.rows > 0

    # The placement arrives late and moves the order to the previous day.
    async with ctx.pool.acquire() as conn:
        await conn.execute(
            "UPDATE order_history SET placed_at = $2, update_time = now() WHERE order_id = $1",
            late,
            NOW - timedelta(days=1),
        )
    await roll_up(ctx, policy, NOW)
    daily = {r[1]: r[2] for r in (await snapshot(ctx, TABLES[0]))[0]}
    assert daily[date(2025, 6, 11)] == 1  # only the order placed that day
    assert daily[date(2025, 6, 10)] == 2  # its own, plus the late one
    assert sum(daily.values()) == 21


async def test_watermark_limits_the_work_to_what_changed(ctx: Context) -> None:
    policy = JobPolicy(rollup_overlap_seconds=0)
    async with ctx.pool.acquire() as conn:
        customer = await add_customer(conn)
        await add_order(conn, customer, None, NOW, paid=10)
    assert (await roll_up(ctx, policy, NOW)).rows == 1
    assert (await roll_up(ctx, policy, NOW)).rows == 0
    async with ctx.pool.acquire() as conn:
        await add_order(conn, customer, None, NOW - timedelta(days=3), paid=10)
    assert (await roll_up(ctx, policy, NOW)).rows == 1
