"""Bad events go to the dead-letter topic with their reason, and the consumer moves on;
`customer-service dlq list` shows them and `dlq replay` applies them once fixed, once."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer

from customer_consumer import demo_traffic
from customer_core.context import Context
from customer_core.context.kafka import client_options
from customer_core.events.encode import event_json
from tests.integration.consumer.conftest import eventually, make_customers, send, send_raw


def cli(cenv: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_launcher", "dlq", *args],
        env=cenv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def count(ctx: Context, sql: str, *args: object) -> int:
    async with ctx.pool.acquire() as conn:
        return int(await conn.fetchval(sql, *args))


async def read_dlq(cset, n: int) -> list:
    consumer = AIOKafkaConsumer(
        cset.core.kafka.dlq_topic,
        **client_options(cset.core.kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list = []
    try:
        async with asyncio.timeout(60):
            while len(got) < n:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(batch)
    finally:
        await consumer.stop()
    return got


async def test_poison_events_are_dead_lettered_with_reasons_and_good_ones_still_apply(
    ctx: Context, cset, producer, start_consumer
):
    [cid] = await make_customers(ctx, 1)
    rng = random.Random(3)
    at = datetime(2025, 5, 5, 9, tzinfo=UTC)
    placed, *rest = demo_traffic.order_events(rng, cid, at)
    good = event_json(placed)
    stranger = uuid.uuid4()
    placed_topic = cset.topic(placed.topic)

    def variant(**changes: object) -> bytes:
        return json.dumps({**good, "eventId": str(uuid.uuid4()), **changes}).encode()

    negative = {**good["placed"], "totalMinor": "-5"}  # type: ignore[dict-item]
    poison = {
        "not JSON": b"{not json",
        "wrong type": variant(eventType="order.completed"),
        "negative amount": variant(placed=negative),
        "unknown customer": variant(customerId=str(stranger), orderId="ord-stranger"),
        "unknown schema": variant(schemaVersion=7),
        "missing body": json.dumps({k: v for k, v in good.items() if k != "placed"}).encode(),
    }
    await start_consumer()
    for value in poison.values():
        await send_raw(producer, placed_topic, value)
    await send(producer, cset, [placed, *rest])

    await eventually(
        lambda: _applied(ctx, 1 + len(rest)), what="the good events applied after the bad ones"
    )
    letters = await read_dlq(cset, len(poison))
    reasons = {}
    for record in letters:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["dlq.source.topic"] == placed_topic
        assert int(headers["dlq.source.offset"]) >= 0
        assert "dlq.source.partition" in headers
        reasons[record.value] = headers["dlq.reason"]
    assert reasons[poison["not JSON"]].startswith("value: not JSON")
    assert reasons[poison["wrong type"]].startswith("event_type:")
    assert reasons[poison["negative amount"]].startswith("placed.total_minor: must not be negative")
    assert reasons[poison["unknown customer"]] == f"customer_id: unknown customer {stranger}"
    assert reasons[poison["unknown schema"]].startswith("schema_version: unknown version 7")
    assert reasons[poison["missing body"]].startswith("placed: required")
    assert await count(ctx, "SELECT order_count FROM order_stats WHERE customer_id = $1", cid) == 1


async def _applied(ctx: Context, n: int) -> bool:
    return await count(ctx, "SELECT count(*) FROM processed_events") >= n


async def test_dlq_replay_applies_a_fixed_event_exactly_once(
    ctx: Context, cset, cenv, producer, start_consumer
):
    stranger = uuid.uuid4()
    rng = random.Random(5)
    events = demo_traffic.order_events(rng, stranger, datetime(2025, 5, 6, 9, tzinfo=UTC))
    await start_consumer()
    await send(producer, cset, events)
    await read_dlq(cset, len(events))  # all dead-lettered: the customer is unknown

    listed = await asyncio.to_thread(cli, cenv, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == len(events)
    assert {r["reason"] for r in rows} == {f"customer_id: unknown customer {stranger}"}
    assert {r["event_id"] for r in rows} == {e.event_id for e in events}

    # The cause is fixed: the customer now exists (say, imported late).
    async with ctx.pool.acquire() as conn:
        family = uuid.uuid4()
        await conn.execute("INSERT INTO families (id, display_name) VALUES ($1, 'Late')", family)
        await conn.execute(
            "INSERT INTO customers (id, family_id, username) VALUES ($1, $2, 'late')",
            stranger,
            family,
        )
    for _ in range(2):  # replaying twice must still count once
        replayed = await asyncio.to_thread(cli, cenv, "replay", "--all")
        assert replayed.returncode == 0, replayed.stderr
        assert f"replayed {len(events)}" in replayed.stdout
    await eventually(lambda: _applied(ctx, len(events)), what="replayed events applied")
    await asyncio.sleep(2)  # give the second replay time to (not) count again
    assert (
        await count(ctx, "SELECT order_count FROM order_stats WHERE customer_id = $1", stranger)
        == 1
    )
    assert await count(ctx, "SELECT count(*) FROM processed_events") == len(events)


async def test_dlq_replay_of_an_unknown_position_is_refused(cenv, cset):
    done = await asyncio.to_thread(cli, cenv, "replay", "0:12345")
    assert done.returncode == 1
    assert "no dead letter at 0:12345" in done.stderr


async def test_duplicates_on_the_broker_count_once(ctx: Context, cset, producer, start_consumer):
    customers = await make_customers(ctx, 5)
    rng = random.Random(11)
    events = [
        e
        for cid in customers
        for e in demo_traffic.order_events(rng, cid, datetime(2025, 1, 6, tzinfo=UTC))
    ]
    await start_consumer()
    await send(producer, cset, events + events + events[:3])
    await eventually(lambda: _applied(ctx, len(events)), what="all events applied")
    await send(producer, cset, events)  # a late redelivery, after the first ones committed
    await asyncio.sleep(2)
    assert await count(ctx, "SELECT sum(order_count) FROM order_stats") == len(customers)
    assert await count(ctx, "SELECT count(*) FROM processed_events") == len(events)
