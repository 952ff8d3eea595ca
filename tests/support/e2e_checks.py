"""What the e2e tests assert at the end: the service agrees with the model, exactly.

Statistics and balances are read through the API (what a user sees), order
history and ledger sums straight from PostgreSQL, consumer lag from the
broker (the group's committed offsets against the partitions' ends) and from
the consumer's own lag gauge.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.support.e2e_model import Model
from tests.support.e2e_simulator import TOPICS
from tests.support.e2e_stack import E2EStack, metric_samples


def _stats_view(s: pb.CustomerStats) -> dict[str, Any]:
    return {
        "order_count": s.order_count,
        "completed_count": s.completed_count,
        "cancelled_count": s.cancelled_count,
        "spent_minor": s.total_spent.amount_minor,
        "payment_count": s.payment_count,
        "top_drinks": [(d.drink_id, d.count) for d in s.top_drinks],
        "peak_hours": [(h.day_of_week, h.hour, h.count) for h in s.peak_hours],
        "first_order": s.first_order_time.ToDatetime().isoformat() if s.order_count else None,
        "last_order": s.last_order_time.ToDatetime().isoformat() if s.order_count else None,
    }


def _top_ok(got: list[tuple[Any, ...]], every: dict[Any, int], limit: int = 5) -> bool:
    """`got` is a valid top-`limit` of `every` (ties may be broken either way)."""
    if len(got) != min(limit, len(every)):
        return False
    counts = [g[-1] for g in got]
    if counts != sorted(counts, reverse=True):
        return False
    if any(every.get(g[:-1] if len(g) > 2 else g[0]) != g[-1] for g in got):
        return False
    chosen = {g[:-1] if len(g) > 2 else g[0] for g in got}
    floor = min(counts, default=0)
    return all(n <= floor for k, n in every.items() if k not in chosen)


def stats_problems(model: Model, name: str, s: pb.CustomerStats) -> list[str]:
    want = model.stats(name)
    got = _stats_view(s)
    expected = {
        "order_count": want.order_count,
        "completed_count": want.completed_count,
        "cancelled_count": want.cancelled_count,
        "spent_minor": want.spent_minor,
        "payment_count": want.payment_count,
        "first_order": want.first_order.replace(tzinfo=None).isoformat()
        if want.first_order
        else None,
        "last_order": want.last_order.replace(tzinfo=None).isoformat() if want.last_order else None,
    }
    problems = [f"{name} {k}: got {got[k]}, model {v}" for k, v in expected.items() if got[k] != v]
    drinks = dict(want.drinks)
    if not _top_ok(got["top_drinks"], drinks):
        problems.append(f"{name} top_drinks: got {got['top_drinks']}, model counts {drinks}")
    hours = {(d, h): n for d, h, n in want.hours}
    if not _top_ok(got["peak_hours"], hours):
        problems.append(f"{name} peak_hours: got {got['peak_hours']}, model counts {hours}")
    return problems


async def api_problems(stub: customer_pb2_grpc.CustomerServiceStub, model: Model) -> list[str]:
    """Every difference between the API's statistics and balances and the model."""
    problems: list[str] = []
    for name in model.members:
        s = await stub.GetCustomerStats(pb.GetCustomerStatsRequest(customer=name), timeout=10)
        problems += stats_problems(model, name, s)
    for name, m in model.members.items():
        # The hot path answers from its cache: it must not lag behind the ledger.
        oc = await stub.GetOrderContext(pb.GetOrderContextRequest(customer=name), timeout=10)
        if oc.points_balance != model.balance(m.account).balance:
            problems.append(
                f"{name} GetOrderContext points_balance {oc.points_balance}, "
                f"model {model.balance(m.account).balance}"
            )
    for account, member in model.accounts().items():
        a = await stub.GetLoyaltyAccount(pb.GetLoyaltyAccountRequest(customer=member), timeout=10)
        want = model.balance(account)
        got = (a.balance, a.held_points, a.lifetime_points, a.tier_points)
        expected = (want.balance, want.held, want.lifetime, want.tier_points)
        if got != expected:
            problems.append(
                f"{account} (balance, held, lifetime, tier points): got {got}, model {expected}"
            )
    return problems


async def converge(
    stub: customer_pb2_grpc.CustomerServiceStub, model: Model, within: float = 120.0
) -> None:
    """Poll the API until it agrees with the model; fail with the differences left."""
    deadline = time.monotonic() + within
    problems: list[str] = ["not checked yet"]
    while time.monotonic() < deadline:
        try:
            problems = await api_problems(stub, model)
        except Exception as exc:  # a replica may still be recovering from a fault
            problems = [f"API read failed: {exc!r}"]
        if not problems:
            return
        await asyncio.sleep(1.0)
    shown = "\n".join(problems[:30])
    raise AssertionError(
        f"the service never agreed with the model; {len(problems)} differences:\n{shown}"
    )


HISTORY = """
SELECT order_id, completed_at IS NOT NULL, cancelled_at IS NOT NULL, total_minor, paid_minor,
       points_earned, placed_at
FROM order_history WHERE order_id = ANY($1::text[])
"""
LEDGER_MISMATCH = """
SELECT a.id, a.balance, coalesce(sum(p.points), 0) AS ledger
FROM loyalty_accounts a LEFT JOIN loyalty_points p ON p.account_id = a.id
GROUP BY a.id, a.balance
HAVING a.balance <> coalesce(sum(p.points), 0) OR a.balance < 0
"""
EARNED_TWICE = """
SELECT idempotency_key, count(*) FROM loyalty_points
WHERE idempotency_key LIKE 'order:%' GROUP BY idempotency_key HAVING count(*) > 1
"""


async def database_problems(dsn: str, model: Model) -> list[str]:
    """Order history rows equal the model; every balance equals its ledger; nothing twice."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(HISTORY, list(model.orders))
        mismatched = await conn.fetch(LEDGER_MISMATCH)
        twice = await conn.fetch(EARNED_TWICE)
    finally:
        await conn.close()
    problems = []
    seen = {r["order_id"]: r for r in rows}
    for order_id, order in model.orders.items():
        r = seen.get(order_id)
        if r is None:
            problems.append(f"order {order_id}: no order_history row")
            continue
        got = (r[1], r[2], r["total_minor"], r["paid_minor"], r["points_earned"])
        if got != model.history(order_id) or r["placed_at"] != order.placed_at:
            problems.append(
                f"order {order_id}: (completed, cancelled, total, paid, points) got {got}, "
                f"model {model.history(order_id)}; placed {r['placed_at']} vs {order.placed_at}"
            )
    problems += [
        f"account {r['id']}: balance {r['balance']}, ledger {r['ledger']}" for r in mismatched
    ]
    problems += [f"ledger key {r['idempotency_key']} posted {r['count']} times" for r in twice]
    return problems


async def group_lag(brokers: str, group: str = "customer-service") -> int:
    """Records in the four topics the consumer group has not committed past."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in TOPICS
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not tps:
            return 0
        ends = await consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            committed = await consumer.committed(tp) or 0
            lag += max(ends[tp] - committed, 0)
        return lag
    finally:
        await consumer.stop()


async def wait_lag_zero(stack: E2EStack, within: float = 90.0) -> None:
    """Until the group has committed everything and the consumer's lag gauge reads zero."""
    deadline = time.monotonic() + within
    last = "not measured"
    while time.monotonic() < deadline:
        try:
            lag = await group_lag(stack.brokers)
        except Exception as exc:  # the broker may still be coming back
            last = f"lag unreadable: {exc!r}"
            await asyncio.sleep(1)
            continue
        text = stack.scrape(stack.proc("consumer")) or ""
        gauges = metric_samples(text, "customer_consumer_lag")
        if lag == 0 and all(v == 0 for v in gauges.values()):
            return
        last = f"committed lag {lag}, gauges {sorted(v for v in gauges.values() if v)}"
        await asyncio.sleep(1)
    raise AssertionError(f"consumer lag did not return to zero: {last}")


async def dead_lettered(brokers: str, topic: str, quiet: float = 3.0) -> set[str]:
    """The `e2e-poison` markers of every record on the dead-letter topic (read until quiet)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=brokers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found: set[str] = set()
    try:
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                last = time.monotonic()
                for r in records:
                    for k, v in r.headers or ():
                        if k == "e2e-poison":
                            found.add(v.decode())
    finally:
        await consumer.stop()
    return found
