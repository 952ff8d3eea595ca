"""A record whose apply fails costs that record, not its batch or partition; and what a
committed batch changed is published once, even when a later step of the batch fails."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime

from customer_consumer import demo_traffic
from customer_core import activity_streams, notices
from customer_core.cache_keys import generation_key
from customer_core.context import Context
from customer_core.domain.order_events import OrderEvent, Placed
from customer_core.events.encode import event_json
from tests.integration.consumer.conftest import eventually, make_customers, send_raw
from tests.integration.consumer.test_dead_letters import count, read_dlq

AT = datetime(2025, 6, 2, 9, tzinfo=UTC)


def placed_for(rng: random.Random, customers: list[uuid.UUID]) -> list[OrderEvent]:
    return [demo_traffic.order_events(rng, cid, AT)[0] for cid in customers]


def with_nul_in_drink_name(ev: OrderEvent) -> OrderEvent:
    # Valid protobuf JSON that PostgreSQL refuses: text cannot hold U+0000.
    assert isinstance(ev.body, Placed)
    item = dataclasses.replace(ev.body.items[0], drink_name="Flat\x00White")
    return dataclasses.replace(ev, body=dataclasses.replace(ev.body, items=(item,)))


def raw(ev: OrderEvent) -> bytes:
    return json.dumps(event_json(ev)).encode()


async def test_a_record_the_database_refuses_is_bisected_out_and_dead_lettered(
    ctx: Context, cset, producer, start_consumer
):
    customers = await make_customers(ctx, 40)
    rng = random.Random(21)
    good = [e for _ in range(6) for e in placed_for(rng, customers)]  # 240 orders
    poison = with_nul_in_drink_name(placed_for(rng, customers[:1])[0])
    records = [*good[:120], poison, *good[120:]]
    topic = cset.topic(poison.topic)
    for ev in records:  # one key: one partition, in this order, fetched as one batch or few
        await send_raw(producer, topic, raw(ev), key=b"same")
    await start_consumer()

    await eventually(
        lambda: _processed(ctx, len(good)), what="every good order applied around the bad one"
    )
    [letter] = await read_dlq(cset, 1)
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlq.event.id"] == poison.event_id
    assert headers["dlq.reason"].startswith("database refused it: invalid byte sequence")
    assert await count(ctx, "SELECT sum(order_count) FROM order_stats") == len(good)
    # Bisecting finds the record in a few transactions per batch; applying the batch
    # one event at a time took one per event (240 here).
    transactions = await count(ctx, "SELECT count(DISTINCT xmin::text) FROM processed_events")
    assert transactions <= 40, transactions


async def test_a_dead_letter_send_failing_after_the_commit_still_publishes_each_change_once(
    ctx: Context, cset, producer, start_consumer
):
    customers = await make_customers(ctx, 20)
    rng = random.Random(22)
    good = placed_for(rng, customers)
    topic = cset.topic(good[0].topic)
    running = await start_consumer()
    await eventually(
        lambda: _true(running.runner.health.started), what="the consumer joined its group"
    )
    # A real fault: the producer the dead letters go through is closed, so the send
    # fails after the batch's transaction committed (the runner must get a new one).
    await running.runner.producer.stop()
    await send_raw(producer, topic, b"{not json", key=b"same")
    for ev in good:
        await send_raw(producer, topic, raw(ev), key=b"same")

    [letter] = await read_dlq(cset, 1)
    assert letter.value == b"{not json"
    await eventually(lambda: _processed(ctx, len(good)), what="the good orders applied")

    async def all_published() -> bool:
        return all([await _kinds(ctx, cid) for cid in customers])

    await eventually(all_published, what="every good order's activity published")
    for cid in customers:
        assert await _kinds(ctx, cid) == Counter({"order_placed": 1}), cid
        assert int(await ctx.valkey.get(generation_key(cid)) or 0) == 1, cid


async def _kinds(ctx: Context, cid: uuid.UUID) -> Counter[str]:
    entries = await activity_streams.read_after(
        ctx.valkey, notices.customer_stream(cid), "0-0", 100
    )
    return Counter(e.activity.kind for e in entries)


async def _processed(ctx: Context, n: int) -> bool:
    return await count(ctx, "SELECT count(*) FROM processed_events") >= n


async def _true(value: bool) -> bool:
    return value


async def test_a_record_too_big_to_dead_letter_whole_is_dead_lettered_without_its_value(
    ctx: Context, cset, start_consumer
):
    """The consumer fetches records of up to 4 MiB; a dead letter of one above what a
    producer sends (1 MiB) was refused on every retry, and the partition never moved."""
    from customer_consumer import kafka

    [cid] = await make_customers(ctx, 1)
    [good] = placed_for(random.Random(23), [cid])
    topic = cset.topic(good.topic)
    big = kafka.producer(cset.core.kafka, max_request_size=4 * 1024 * 1024)
    await big.start()
    try:
        await send_raw(big, topic, b"x" * 1_500_000, key=b"same")
        await send_raw(big, topic, raw(good), key=b"same")
    finally:
        await big.stop()
    await start_consumer()

    [letter] = await read_dlq(cset, 1)
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlq.reason"].startswith("value: not JSON")
    assert headers["dlq.value.omitted"] == "1500000"
    assert letter.value is None
    assert headers["dlq.source.topic"] == topic
    await eventually(lambda: _processed(ctx, 1), what="the good order after the big one")
