"""Consumer benchmark: order events from the broker into committed database state.

    .venv/bin/python bench/consumer.py [--quick] [--events N]

Starts its own embedded PostgreSQL, Valkey and Tansu, creates customers (a
share of them in pooled family wallets), pre-loads N realistic events (mixed
topics, skewed customers, ~2% exact duplicates) onto the broker, then runs the
real consumer (Runner, in this process) until every offset is committed, and
reports events/s end to end.

In the same run it measures the raw ceiling of the same database work: the
rows the consumer writes (inbox, history, statistics, drinks, hours, ledger
entries and balances), computed beforehand, written as ONE set-based
statement per batch of the same size into a second database, with no Kafka,
no decoding and no per-batch reads. The ratio end-to-end / ceiling is the
figure to watch on a noisy machine. The last line is JSON for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "shared"), str(HERE.parent / "services" / "consumer"),
                str(HERE.parent / "services" / "launcher")]  # fmt: skip

from customer_consumer import demo_traffic, kafka  # noqa: E402
from customer_consumer import settings as consumer_settings  # noqa: E402
from customer_consumer.health import Health  # noqa: E402
from customer_consumer.runner import Runner  # noqa: E402
from customer_core.context import Context, connect_db  # noqa: E402
from customer_core.db import orders as db  # noqa: E402
from customer_core.db.migrate import apply_migrations  # noqa: E402
from customer_core.domain.loyalty import EarningRules, points_for_amount  # noqa: E402
from customer_core.domain.orders import (  # noqa: E402
    Completed,
    OrderEvent,
    OrderState,
    apply_event,
    stats_deltas,
)
from customer_launcher.devstack import DevStack  # noqa: E402

TARGET_EPS = 20_000
TARGET_RATIO = 0.2
BATCH = 2000


def plan_customers(n: int) -> tuple[list, list, list, list, dict[uuid.UUID, uuid.UUID]]:
    """n customers: 80% alone in their family, the rest four to a pooled family."""
    customers, families, members, accounts = [], [], [], []
    account_of: dict[uuid.UUID, uuid.UUID] = {}
    pooled_family, pooled_account, in_family = None, None, 0
    for i in range(n):
        cid = uuid.uuid4()
        if i % 5 == 4:
            if pooled_family is None or in_family == 4:
                pooled_family, pooled_account, in_family = uuid.uuid4(), uuid.uuid4(), 0
                families.append((pooled_family, True))
                accounts.append((pooled_account, None, pooled_family))
            in_family += 1
            members.append((cid, pooled_family))
            account_of[cid] = pooled_account
        else:
            fid, aid = uuid.uuid4(), uuid.uuid4()
            families.append((fid, False))
            accounts.append((aid, cid, None))
            members.append((cid, fid))
            account_of[cid] = aid
        customers.append(cid)
    return customers, families, members, accounts, account_of


async def insert_customers(conn, families: list, members: list, accounts: list) -> None:
    await conn.executemany(
        "INSERT INTO families (id, display_name, wallet_pooled) VALUES ($1, 'Bench', $2)", families
    )
    await conn.executemany(
        "INSERT INTO customers (id, family_id, username) VALUES ($1, $2, $3)",
        [(cid, fid, cid.hex) for cid, fid in members],
    )
    await conn.executemany(
        "INSERT INTO loyalty_accounts (id, customer_id, family_id) VALUES ($1, $2, $3)", accounts
    )


def _renumber(sql: str, offset: int) -> str:
    return re.sub(r"\$(\d+)", lambda m: f"${int(m[1]) + offset}", sql)


def ceiling_statement() -> str:
    """Inbox, history, stats, drinks, hours, ledger and balances in one statement."""
    parts = [
        ("inbox", db.CLAIM_EVENTS.replace("RETURNING event_id", "RETURNING 1"), 4),
        ("hist", db.UPSERT_ORDERS + " RETURNING 1", 13),
        ("stats", db.ADD_STATS + " RETURNING 1", 9),
        ("drinks", db.ADD_DRINKS + " RETURNING 1", 4),
        ("hours", db.ADD_HOURS + " RETURNING 1", 3),
    ]
    ctes, offset = [], 0
    for name, sql, n in parts:
        ctes.append(f"{name} AS ({_renumber(sql.strip(), offset)})")
        offset += n
    ledger = f"""pts AS (
        INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,
                                    source_ref, idempotency_key)
        SELECT a, m, k, p, 'bench', 'order', r, key
        FROM unnest(${offset + 1}::uuid[], ${offset + 2}::uuid[], ${offset + 3}::text[],
                    ${offset + 4}::bigint[], ${offset + 5}::text[], ${offset + 6}::text[])
             AS t(a, m, k, p, r, key)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING account_id, points),
    bal AS (
        UPDATE loyalty_accounts acc SET balance = acc.balance + t.net,
               lifetime_points = acc.lifetime_points + greatest(t.net, 0)
        FROM (SELECT account_id, sum(points) AS net FROM pts GROUP BY 1) AS t
        WHERE acc.id = t.account_id RETURNING 1)"""
    ctes.append(ledger)
    return "WITH " + ",\n".join(ctes) + "\nSELECT (SELECT count(*) FROM inbox)"


def _columns(rows: list[tuple], width: int) -> list[list]:
    cols: list[list] = [[] for _ in range(width)]
    for row in rows:
        for col, value in zip(cols, row, strict=True):
            col.append(value)
    return cols


def ceiling_batches(events: list[OrderEvent], account_of, family_of) -> list[list]:
    """Per batch, the statement's arguments: the rows the consumer would write."""
    rules = EarningRules()
    states: dict[str, OrderState] = {}
    earned: dict[str, list[tuple]] = defaultdict(list)
    seen: set[str] = set()
    out = []
    for start in range(0, len(events), BATCH):
        chunk = events[start : start + BATCH]
        inbox, changes, initial = [], [], {}
        for i, ev in enumerate(chunk):
            inbox.append((ev.event_id, ev.topic.value, 0, start + i))
            if ev.event_id in seen:
                continue
            seen.add(ev.event_id)
            before = states.get(ev.order_id) or OrderState(ev.order_id, ev.customer_id)
            initial.setdefault(ev.order_id, before)
            states[ev.order_id], change = apply_event(before, ev)
            changes.append(change)
        ledger = []
        for c in changes:
            body = c.event.body
            if c.completed and isinstance(body, Completed):
                pts = points_for_amount(body.total_minor, body.currency_code, rules)
                if pts:
                    oid, cid = c.event.order_id, c.event.customer_id
                    entry = (account_of[cid], cid, "earn", pts, oid, f"order:{oid}:earn")
                    ledger.append(entry)
                    earned[oid].append(entry)
        for oid, before in initial.items():
            if states[oid].reversal_due and not before.reversal_due:
                for a, m, _, p, r, key in earned[oid]:
                    ledger.append((a, m, "reverse", -p, r, f"{key}:reverse"))
        uniq_inbox = list({row[0]: row for row in inbox}.values())
        hist = [states[oid] for oid in sorted(initial)]
        hist_rows = [
            (o.order_id, o.customer_id, family_of[o.customer_id], o.placed_at, o.completed_at,
             o.cancelled_at, db._items_json(o.items), o.currency_code, o.total_minor,
             o.paid_minor, json.dumps(sorted(o.payment_ids)), o.points_earned, o.cancel_reason)
            for o in hist
        ]  # fmt: skip
        deltas = stats_deltas((c, states[c.event.order_id]) for c in changes)
        stats, drinks, hours = [], [], []
        for cid in sorted(deltas):
            d = deltas[cid]
            stats.append((cid, d.orders, d.completed, d.cancelled, d.spent_minor, d.payments,
                          d.currency_code, d.first_order_at, d.last_order_at))  # fmt: skip
            drinks += [(cid, k, d.drink_names.get(k, ""), n) for k, n in d.drinks.items()]
            hours += [(cid, h, n) for h, n in d.hours.items()]
        out.append(
            _columns(uniq_inbox, 4) + _columns(hist_rows, 13) + _columns(stats, 9)
            + _columns(drinks, 4) + _columns(hours, 3) + _columns(ledger, 6)
        )  # fmt: skip
    return out


async def measure_ceiling(conn, batches: list[list]) -> float:
    sql = ceiling_statement()
    stmt = await conn.prepare(sql)
    start = time.perf_counter()
    for args in batches:
        async with conn.transaction():
            await stmt.fetchval(*args)
    return time.perf_counter() - start


async def run(quick: bool, n_events: int | None) -> dict[str, object]:
    n = n_events or (20_000 if quick else 100_000)
    n_customers = 2_000 if quick else 10_000
    root = Path(tempfile.mkdtemp(prefix="bench-consumer-"))
    os.chmod(root, 0o755)  # PostgreSQL runs as another user when we are root
    stack = DevStack.create(root)
    stack.start()
    try:
        assert stack.postgres is not None
        for name in ("bench_e2e", "bench_ceiling"):
            stack.postgres.psql(f"CREATE DATABASE {name}")
        env = {**os.environ, **stack.env(), "LOG_LEVEL": "WARNING", "METRICS_PORT": "0",
               "KAFKA_TOPIC_PREFIX": "bench.", "KAFKA_GROUP_ID": "bench",
               "KAFKA_DLQ_TOPIC": "bench.dlq", "DB_POOL_MAX": "4",
               "CONSUMER_MAX_BATCH": str(BATCH)}  # fmt: skip
        config = consumer_settings.load({**env, "DB_NAME": "bench_e2e"})
        ceiling_config = consumer_settings.load({**env, "DB_NAME": "bench_ceiling"})
        rng = random.Random(42)
        customers, families, members, accounts, account_of = plan_customers(n_customers)
        family_of = {cid: fid for cid, fid in members}
        for cfg in (config, ceiling_config):
            conn = await connect_db(cfg.core)
            try:
                await apply_migrations(conn)
                await insert_customers(conn, families, members, accounts)
            finally:
                await conn.close()
        load = demo_traffic.load(rng, customers, n, duplicates=0.02)
        print(f"pre-loading {len(load):,} events ...", flush=True)
        await kafka.ensure_topics(config.core.kafka, list(config.topics), config.partitions)
        producer = kafka.producer(config.core.kafka, linger_ms=20, max_batch_size=256 * 1024)
        await producer.start()
        t0 = time.perf_counter()
        await demo_traffic.publish(producer, config.topic_prefix, load, rng)
        await producer.stop()
        print(f"  produced in {time.perf_counter() - t0:.1f}s", flush=True)

        ctx = await Context.create(config.core)
        stop = asyncio.Event()
        runner = Runner(config, ctx, Health(config.stuck_seconds))
        start = time.perf_counter()
        task = asyncio.create_task(runner.run(stop))
        while sum(runner.committed.values()) < len(load):
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        # Throughput from the first fetched record (the group join is not the work).
        e2e_seconds = time.perf_counter() - (runner.first_fetch_at or start)
        stop.set()
        await task
        async with ctx.pool.acquire() as conn:
            applied = await conn.fetchval("SELECT count(*) FROM processed_events")
        await ctx.aclose()
        eps = len(load) / e2e_seconds
        print(f"end to end: {len(load):,} events ({applied:,} unique) in {e2e_seconds:.2f}s "
              f"= {eps:,.0f} events/s", flush=True)  # fmt: skip

        # The ceiling: same events, same batch size, rows computed up front.
        batches = ceiling_batches([o.event for o in load], account_of, family_of)
        conn = await connect_db(ceiling_config.core)
        try:
            ceiling_seconds = await measure_ceiling(conn, batches)
        finally:
            await conn.close()
        ceiling = len(load) / ceiling_seconds
        ratio = eps / ceiling
        print(f"raw ceiling (one set-based statement per {BATCH}-event batch): "
              f"{ceiling:,.0f} events/s; ratio {ratio:.2f}", flush=True)  # fmt: skip
        return {
            "bench": "consumer",
            "events": len(load),
            "figures": [
                {"name": "events/s end to end", "value": round(eps), "unit": "events/s",
                 "baseline": round(ceiling), "baseline_name": "one SQL statement per batch",
                 "ratio": round(ratio, 3), "target": f">= {TARGET_EPS:,} events/s and "
                 f">= {TARGET_RATIO} of baseline",
                 "pass": eps >= TARGET_EPS and ratio >= TARGET_RATIO},
            ],
        }  # fmt: skip
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k events instead of 100k")
    parser.add_argument("--events", type=int, default=None, help="how many events")
    opts = parser.parse_args()
    result = asyncio.run(run(opts.quick, opts.events))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
