"""Jobs benchmark: point expiry and stats roll-up throughput on embedded servers.

    .venv/bin/python bench/jobs.py [--quick] [--accounts N] [--orders N]

Starts its own PostgreSQL and Valkey (customer_launcher.devstack.DevStack),
seeds N accounts inactive for a year (set-based SQL) and times one expiry run
over all of them, then seeds order history and times a full roll-up and an
incremental one. The last line is one JSON object for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from customer_core.config import load_settings
from customer_core.context import Context, connect_db
from customer_core.db.migrate import apply_migrations
from customer_core.domain.jobs import JobPolicy
from customer_core.usecases.jobs.expiry import expire_points
from customer_core.usecases.jobs.rollups import roll_up
from customer_launcher.devstack import DevStack

EXPIRY_TARGET_SECONDS = 300.0  # "one million inactive accounts in at most a few minutes"
SEED_CHUNK = 100_000

SEED_ACCOUNTS = """
WITH f AS (
    INSERT INTO families (id, display_name)
    SELECT gen_random_uuid(), 'F' FROM generate_series(1, $1) RETURNING id
), c AS (
    INSERT INTO customers (id, family_id, username)
    SELECT gen_random_uuid(), id, 'u' || replace(id::text, '-', '') FROM f RETURNING id
), a AS (
    INSERT INTO loyalty_accounts (id, customer_id, balance, lifetime_points, last_activity_at)
    SELECT gen_random_uuid(), id, 250, 250, now() - interval '365 days' FROM c RETURNING id
)
INSERT INTO loyalty_points (account_id, kind, points, reason, source, idempotency_key)
SELECT id, 'earn', 250, 'seed', 'operator', 'seed:' || id FROM a
"""
# Orders spread over 60 days across the customers seeded above.
SEED_ORDERS = """
WITH c AS (SELECT id, family_id, row_number() OVER () AS n FROM customers),
o AS (
    SELECT g, now() - (g % 60) * interval '1 day' - (g % 24) * interval '1 hour' AS at
    FROM generate_series($1::bigint, $2::bigint) g
)
INSERT INTO order_history (order_id, customer_id, family_id, placed_at, completed_at,
                           paid_minor, points_earned, create_time, update_time)
SELECT 'bench-' || o.g, c.id, c.family_id, o.at, o.at + interval '5 minutes', 450, 45, o.at,
       o.at
FROM o JOIN c ON c.n = 1 + o.g % $3
"""
# Late events for 1% of the orders, spread over the whole history.
TOUCH_SOME = """
UPDATE order_history SET update_time = now(), paid_minor = paid_minor + 1
WHERE order_id IN (SELECT order_id FROM order_history ORDER BY md5(order_id) LIMIT $1)
"""


def figure(name: str, value: float, unit: str, target: str, ok: bool) -> dict[str, object]:
    return {"name": name, "value": round(value, 1), "unit": unit, "target": target, "pass": ok}


async def bench(
    settings_env: dict[str, str], accounts: int, orders: int
) -> list[dict[str, object]]:
    settings = load_settings(settings_env)
    conn = await connect_db(settings)
    try:
        await apply_migrations(conn)
        started = time.perf_counter()
        for first in range(0, accounts, SEED_CHUNK):
            await conn.execute(SEED_ACCOUNTS, min(SEED_CHUNK, accounts - first))
        await conn.execute("ANALYZE")
        print(f"seeded {accounts} inactive accounts in {time.perf_counter() - started:.1f}s")
    finally:
        await conn.close()

    ctx = await Context.create(settings)
    figures: list[dict[str, object]] = []
    try:
        policy = JobPolicy()
        now = datetime.now(UTC)
        started = time.perf_counter()
        outcome = await expire_points(ctx, policy, now)
        seconds = time.perf_counter() - started
        assert outcome.rows == accounts, outcome
        async with ctx.pool.acquire() as conn:
            assert await conn.fetchval("SELECT sum(balance) FROM loyalty_accounts") == 0
        rate = accounts / seconds
        projected = 1_000_000 / rate
        print(
            f"expiry: {accounts} accounts in {seconds:.1f}s ({rate:.0f}/s), "
            f"1M projected {projected:.0f}s"
        )
        figures.append(
            figure(
                "expiry accounts/s",
                rate,
                "accounts/s",
                f"1M accounts <= {EXPIRY_TARGET_SECONDS:.0f}s",
                projected <= EXPIRY_TARGET_SECONDS,
            )
        )
        figures.append(
            figure(
                "expiry 1M accounts (projected)",
                projected,
                "s",
                f"<= {EXPIRY_TARGET_SECONDS:.0f}s",
                projected <= EXPIRY_TARGET_SECONDS,
            )
        )
        started = time.perf_counter()
        again = await expire_points(ctx, policy, now)
        print(f"expiry re-run: {again.rows} accounts in {time.perf_counter() - started:.1f}s")

        async with ctx.pool.acquire() as conn:
            started = time.perf_counter()
            for first in range(0, orders, SEED_CHUNK):
                last = min(first + SEED_CHUNK, orders)
                await conn.execute(SEED_ORDERS, first + 1, last, accounts)
            await conn.execute("ANALYZE")
            print(f"seeded {orders} orders in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        full = await roll_up(ctx, policy, datetime.now(UTC))
        seconds = time.perf_counter() - started
        print(f"roll-up (full): {orders} orders, {full.rows} customer-days in {seconds:.1f}s")
        figures.append(
            figure("roll-up orders/s (full)", orders / seconds, "orders/s", "informational", True)
        )
        changed = max(orders // 100, 1)
        async with ctx.pool.acquire() as conn:
            await conn.execute(TOUCH_SOME, changed)
        started = time.perf_counter()
        incremental = await roll_up(ctx, policy, datetime.now(UTC))
        seconds = time.perf_counter() - started
        print(
            f"roll-up (incremental, {changed} changed orders): {incremental.rows} "
            f"customer-days in {seconds:.2f}s"
        )
        figures.append(
            figure("roll-up incremental (1% changed)", seconds, "s", "informational", True)
        )
    finally:
        await ctx.aclose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer accounts and orders")
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--orders", type=int)
    opts = parser.parse_args()
    accounts = opts.accounts or (50_000 if opts.quick else 1_000_000)
    orders = opts.orders or (50_000 if opts.quick else 500_000)
    root = Path(tempfile.mkdtemp(prefix="customer-bench-jobs-"))
    root.chmod(0o755)
    stack = DevStack.create(root, kafka=False)
    stack.start()
    try:
        figures = asyncio.run(bench(stack.env(), accounts, orders))
    finally:
        stack.stop()
        # Each run's servers hold hundreds of MB of data: leave nothing behind.
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"bench": "jobs", "accounts": accounts, "orders": orders, "figures": figures}))
    return 0 if all(f["pass"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
