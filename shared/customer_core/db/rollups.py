"""Stats roll-ups: recompute whole periods touched by changed order history.

A run collects the (customer, family, day) keys of order_history rows changed in
its window, then recomputes those periods from scratch (live history plus the
archive), so re-running a window gives the same result and a late event simply
makes its period be recomputed by the next run. Every timestamp an order carries
contributes a key, so an order whose day moves (placement seen after
completion) is removed from its old day as well.
"""

from __future__ import annotations

from datetime import datetime

from customer_core.db import Conn

# The day an order counts on: when it was placed, or first seen.
_DAY = (
    "(timezone('UTC', coalesce(h.placed_at, h.completed_at, h.cancelled_at, h.create_time)))::date"
)
_SUMS = """count(*), count(h.completed_at), count(h.cancelled_at),
           coalesce(sum(h.paid_minor), 0), coalesce(sum(h.points_earned), 0)"""

COLLECT_KEYS = """
CREATE TEMP TABLE rollup_keys ON COMMIT DROP AS
SELECT DISTINCT h.customer_id, h.family_id, (timezone('UTC', t.ts))::date AS day
FROM order_history h
CROSS JOIN LATERAL (VALUES (h.placed_at), (h.completed_at), (h.cancelled_at), (h.create_time))
    AS t (ts)
WHERE h.update_time > $1 AND h.update_time <= $2 AND t.ts IS NOT NULL
"""
WINDOW_END = "SELECT coalesce(max(update_time), $1) FROM order_history WHERE update_time > $1"

# Each target: delete the periods to recompute, then insert them afresh (two
# statements, so the insert sees the delete).
CUSTOMER_DAILY = (
    """
    DELETE FROM customer_stats_daily s USING (SELECT DISTINCT customer_id, day FROM rollup_keys) k
    WHERE s.customer_id = k.customer_id AND s.period = k.day
    """,
    f"""
    INSERT INTO customer_stats_daily
    SELECT k.customer_id, k.day, {_SUMS}
    FROM (SELECT DISTINCT customer_id, day FROM rollup_keys) k
    JOIN order_history_all h ON h.customer_id = k.customer_id AND {_DAY} = k.day
    GROUP BY k.customer_id, k.day
    """,
)
FAMILY_DAILY = (
    """
    DELETE FROM family_stats_daily s USING (SELECT DISTINCT family_id, day FROM rollup_keys) k
    WHERE s.family_id = k.family_id AND s.period = k.day
    """,
    f"""
    INSERT INTO family_stats_daily
    SELECT k.family_id, k.day, {_SUMS}
    FROM (SELECT DISTINCT family_id, day FROM rollup_keys WHERE family_id IS NOT NULL) k
    JOIN order_history_all h ON h.family_id = k.family_id AND {_DAY} = k.day
    GROUP BY k.family_id, k.day
    """,
)
# Weeks are sums of their (already recomputed) days.
_WEEK_KEYS = """(
    SELECT DISTINCT {who}, date_trunc('week', day)::date AS week FROM rollup_keys
    WHERE {who} IS NOT NULL
) k"""
_WEEKLY = (
    "DELETE FROM {table}_weekly s USING "
    + _WEEK_KEYS
    + " WHERE s.{who} = k.{who} AND s.period = k.week",
    "INSERT INTO {table}_weekly SELECT k.{who}, k.week, sum(d.orders), sum(d.completed),"
    " sum(d.cancelled), sum(d.spent_minor), sum(d.points_earned) FROM "
    + _WEEK_KEYS
    + " JOIN {table}_daily d ON d.{who} = k.{who} AND d.period >= k.week"
    " AND d.period < k.week + 7 GROUP BY k.{who}, k.week",
)
CUSTOMER_WEEKLY = tuple(s.format(who="customer_id", table="customer_stats") for s in _WEEKLY)
FAMILY_WEEKLY = tuple(s.format(who="family_id", table="family_stats") for s in _WEEKLY)

# Peak hours count orders by when they were placed.
PLATFORM_HOURLY = (
    """
    DELETE FROM platform_hourly_orders p USING (SELECT DISTINCT day FROM rollup_keys) d
    WHERE p.day = d.day
    """,
    """
    INSERT INTO platform_hourly_orders (day, hour, isodow, orders)
    SELECT d.day, extract(hour FROM timezone('UTC', h.placed_at))::smallint,
           extract(isodow FROM d.day)::smallint, count(*)
    FROM (SELECT DISTINCT day FROM rollup_keys) d JOIN order_history_all h
        ON h.placed_at >= d.day::timestamp AT TIME ZONE 'UTC'
       AND h.placed_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY d.day, 2
    """,
)
PEAK_HOURS = """
WITH totals AS (
    SELECT (isodow - 1) * 24 + hour AS hour_of_week, sum(orders)::bigint AS orders
    FROM platform_hourly_orders GROUP BY 1
),
gone AS (
    DELETE FROM platform_peak_hours p
    WHERE NOT EXISTS (SELECT 1 FROM totals t WHERE t.hour_of_week = p.hour_of_week)
)
INSERT INTO platform_peak_hours (hour_of_week, orders)
SELECT hour_of_week, orders FROM totals
ON CONFLICT (hour_of_week) DO UPDATE SET orders = EXCLUDED.orders, update_time = now()
    WHERE platform_peak_hours.orders <> EXCLUDED.orders
"""
KEY_COUNT = "SELECT count(*) FROM rollup_keys"


async def window_end(conn: Conn, start: datetime) -> datetime:
    """The newest change after `start`: the window ends there, never in the future."""
    end: datetime = await conn.fetchval(WINDOW_END, start)
    return end


async def collect_keys(conn: Conn, start: datetime, end: datetime) -> int:
    """Gather the periods to recompute (a temporary table dropped at commit)."""
    await conn.execute(COLLECT_KEYS, start, end)
    return int(await conn.fetchval(KEY_COUNT))


async def recompute(conn: Conn) -> None:
    """Recompute every period in rollup_keys: days first, then weeks, then peak hours."""
    for delete, insert in (
        CUSTOMER_DAILY,
        FAMILY_DAILY,
        CUSTOMER_WEEKLY,
        FAMILY_WEEKLY,
        PLATFORM_HOURLY,
    ):
        await conn.execute(delete)
        await conn.execute(insert)
    await conn.execute(PEAK_HOURS)
