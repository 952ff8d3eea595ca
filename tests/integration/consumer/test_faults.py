"""Faults on the real servers: a consumer killed mid-batch, SIGTERM, PostgreSQL going away,
two consumers sharing a group. Nothing is lost, nothing is counted twice."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from customer_consumer import demo_traffic
from customer_core.context import Context
from customer_core.context.kafka import client_options
from customer_core.domain.order_events import Cancelled, Completed, OrderEvent, Payment, Placed
from tests.integration.consumer.conftest import PARTITIONS, eventually, make_customers, send


def expected_totals(events: list[OrderEvent]) -> dict[str, int]:
    kinds = Counter(type(e.body).__name__ for e in events)
    return {
        "orders": kinds[Placed.__name__],
        "completed": kinds[Completed.__name__],
        "cancelled": kinds[Cancelled.__name__],
        "payments": kinds[Payment.__name__],
        "spent": sum(e.body.amount_minor for e in events if isinstance(e.body, Payment)),
    }


async def totals(ctx: Context) -> dict[str, int]:
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT coalesce(sum(order_count), 0) AS orders, "
            "coalesce(sum(completed_count), 0) AS completed, "
            "coalesce(sum(cancelled_count), 0) AS cancelled, "
            "coalesce(sum(payment_count), 0) AS payments, "
            "coalesce(sum(total_spent_minor), 0) AS spent FROM order_stats"
        )
    return {k: int(v) for k, v in dict(row).items()}


async def processed(ctx: Context) -> int:
    async with ctx.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM processed_events"))


async def ledger_is_consistent(ctx: Context) -> None:
    async with ctx.pool.acquire() as conn:
        bad = await conn.fetchval(
            "SELECT count(*) FROM loyalty_accounts a WHERE a.balance <> "
            "(SELECT coalesce(sum(points), 0) FROM loyalty_points p WHERE p.account_id = a.id)"
        )
        earns = await conn.fetchval("SELECT count(*) FROM loyalty_points WHERE kind = 'earn'")
        orders = await conn.fetchval(
            "SELECT count(*) FROM order_history WHERE completed_at IS NOT NULL AND total_minor > 0"
        )
    assert bad == 0
    assert earns == orders  # one earn entry per completed order, never two


def workload(customers: list[uuid.UUID], orders: int, seed: int) -> list[OrderEvent]:
    rng = random.Random(seed)
    at = datetime(2025, 2, 3, 7, tzinfo=UTC)
    return [
        e
        for _ in range(orders)
        for e in demo_traffic.order_events(rng, demo_traffic.skewed(rng, customers), at)
    ]


def spawn(cenv: dict[str, str], **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "customer_launcher", "consumer"],
        env={**cenv, **extra},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_a_consumer_killed_mid_batch_loses_and_doubles_nothing(ctx, cset, cenv, producer):
    customers = await make_customers(ctx, 30)
    # Enough events that a fast consumer is still mid-stream when the kill lands.
    events = workload(customers, 1500, seed=1)
    await send(producer, cset, events)
    first = spawn(cenv, CONSUMER_MAX_BATCH="100")
    try:
        await eventually(lambda: _at_least(ctx, 100), what="some batches applied")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert await processed(ctx) < len(events), "killed too late to be mid-stream"
    second = spawn(cenv, CONSUMER_MAX_BATCH="100")
    try:
        await eventually(lambda: _at_least(ctx, len(events)), within=120, what="all applied")
        await asyncio.sleep(1)
        assert await totals(ctx) == expected_totals(events)
        await ledger_is_consistent(ctx)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0


async def _at_least(ctx: Context, n: int) -> bool:
    return await processed(ctx) >= n


async def test_sigterm_finishes_commits_and_leaves(ctx, cset, cenv, producer):
    customers = await make_customers(ctx, 10)
    events = workload(customers, 200, seed=2)
    proc = spawn(cenv)
    try:
        await send(producer, cset, events)
        await eventually(lambda: _at_least(ctx, len(events)), what="all applied")
        await asyncio.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    # Every offset was committed: a new member of the group starts at the end.
    assert await _committed_total(cset) == len(events)


async def test_postgres_outage_pauses_then_resumes_without_loss(
    ctx, cset, producer, start_consumer, stack
):
    customers = await make_customers(ctx, 20)
    events = workload(customers, 400, seed=3)
    half = len(events) // 2
    running = await start_consumer(dataclasses.replace(cset, stuck_seconds=1.0))
    await send(producer, cset, events[:half])
    await eventually(lambda: _at_least(ctx, half), what="first half applied")
    stack.postgres.stop()
    try:
        await send(producer, cset, events[half:])

        async def unready() -> bool:
            return not running.runner.health.ready()

        await eventually(unready, within=30, what="readiness to turn bad during the outage")
        assert "database" in running.runner.health.problem
    finally:
        stack.postgres.start()
    await eventually(lambda: _at_least(ctx, len(events)), within=120, what="all applied after")

    async def ready() -> bool:
        return running.runner.health.ready()

    await eventually(ready, within=30, what="readiness to recover")
    assert await totals(ctx) == expected_totals(events)
    await ledger_is_consistent(ctx)
    assert not running.task.done()


async def test_two_consumers_split_partitions_and_one_takes_over(
    ctx, cset, producer, start_consumer
):
    customers = await make_customers(ctx, 40)
    events = workload(customers, 200, seed=4)
    a = await start_consumer()
    b = await start_consumer()

    async def both_assigned() -> bool:
        sizes = [len(r.runner.consumer.assignment()) if r.runner.consumer else 0 for r in (a, b)]
        return all(sizes) and sum(sizes) == PARTITIONS * 4

    await eventually(both_assigned, what="the group to split the partitions")
    await send(producer, cset, events[:400])
    await eventually(lambda: _at_least(ctx, 400), what="first part applied")
    assert a.runner.done and b.runner.done, "both members applied batches"
    await a.close()  # leaves the group: b takes every partition
    await send(producer, cset, events[400:])
    await eventually(lambda: _at_least(ctx, len(events)), within=120, what="all applied")
    assert await totals(ctx) == expected_totals(events)
    await ledger_is_consistent(ctx)


async def _committed_total(cset) -> int:
    group = AIOKafkaConsumer(
        **client_options(cset.core.kafka),
        group_id=cset.core.kafka.group_id,
        enable_auto_commit=False,
    )
    await group.start()
    try:
        tps = [TopicPartition(t, p) for t in cset.topics for p in range(PARTITIONS)]
        return sum([await group.committed(tp) or 0 for tp in tps])
    finally:
        await group.stop()


async def test_a_batch_done_during_a_commit_is_committed_without_more_traffic(
    ctx, cset, producer, start_consumer
):
    """The group's committed offsets reach the end once the consumer is idle, even
    when the last batch finished while the previous batch's commit was in flight."""
    customers = await make_customers(ctx, 3)
    running = await start_consumer()
    runner = running.runner
    await eventually(lambda: _true(runner.health.started), what="consumer started")
    assert runner.consumer is not None
    # Hold the first offset commit until a second batch has been applied.
    held, release = asyncio.Event(), asyncio.Event()
    real_commit = runner.consumer.commit

    async def slow_commit(offsets=None):  # type: ignore[no-untyped-def]
        held.set()
        await release.wait()
        return await real_commit(offsets)

    runner.consumer.commit = slow_commit  # type: ignore[method-assign]
    first, second = workload(customers, 5, seed=3), workload(customers, 5, seed=4)
    await send(producer, cset, first)
    await asyncio.wait_for(held.wait(), 60)
    await send(producer, cset, second)
    total = len(first) + len(second)
    await eventually(lambda: _at_least(ctx, total), what="the second batch applied")
    release.set()

    async def all_committed() -> bool:
        return await _committed_total(cset) == total

    await eventually(all_committed, within=30, what="every offset committed while idle")


async def _true(value: bool) -> bool:
    return value
