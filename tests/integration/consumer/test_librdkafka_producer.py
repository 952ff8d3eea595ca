"""Events published by librdkafka (confluent-kafka), as a producer of another stack sends them.

Our own tests publish with aiokafka, which sends uncompressed batches. The
Order Service's producer is not ours: librdkafka's producers commonly compress
(`compression.type` gzip, snappy, lz4 or zstd), write idempotent batches, and
may publish inside transactions. Each must reach the database exactly once; a
transaction's events count only once it commits; and a batch the consumer
cannot read is retried, never skipped, with the reason in its health report.

Tansu, the test broker, keeps an open transaction's records from read_committed
consumers but also hands them its aborted ones (librdkafka's consumer sees them
too), so "an aborted transaction never counts" cannot be shown here: the open
transaction is the case the broker lets us test, and it takes the same setting.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace

import aiokafka.codec
import pytest
from confluent_kafka import Producer

from customer_consumer import demo_traffic
from customer_consumer.settings import ConsumerSettings
from customer_core.context import Context
from customer_core.domain.order_events import OrderEvent
from tests.integration.consumer.conftest import PARTITIONS, eventually, make_customers
from tests.integration.consumer.test_flow import events_for, processed


def _producer(cset: ConsumerSettings, **config: object) -> Producer:
    return Producer({"bootstrap.servers": cset.core.kafka.bootstrap, "linger.ms": 5, **config})


def _produce(
    producer: Producer,
    cset: ConsumerSettings,
    events: Sequence[OrderEvent],
    partition: int | None = None,
) -> None:
    for event in events:
        out = demo_traffic.outgoing(event)
        where = {} if partition is None else {"partition": partition}
        producer.produce(f"{cset.topic_prefix}{out.topic.value}", out.value, key=out.key, **where)


def _flush(producer: Producer) -> None:
    left = producer.flush(30)
    assert left == 0, f"{left} messages not acknowledged by the broker"


def _order(events: Sequence[OrderEvent], order_id: str) -> list[OrderEvent]:
    """The same events for another order (events_for's ids are fixed)."""
    return [replace(e, event_id=str(uuid.uuid4()), order_id=order_id) for e in events]


async def _state(ctx: Context, cid: uuid.UUID) -> tuple[object, ...]:
    async with ctx.pool.acquire() as conn:
        stats = await conn.fetchrow(
            "SELECT order_count, completed_count, payment_count FROM order_stats"
            " WHERE customer_id = $1",
            cid,
        )
        points = await conn.fetchval(
            "SELECT balance FROM loyalty_accounts WHERE customer_id = $1", cid
        )
    return (tuple(stats) if stats else None, points)


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
async def test_compressed_batches_are_applied_exactly_once(
    ctx: Context, cset: ConsumerSettings, start_consumer, compression: str
) -> None:
    [cid] = await make_customers(ctx, 1)
    producer = _producer(cset, **{"compression.type": compression, "enable.idempotence": True})
    events = events_for(cid)
    # Twice: a producer's retry of the whole set changes nothing.
    _produce(producer, cset, events)
    _produce(producer, cset, events)
    await asyncio.to_thread(_flush, producer)
    await start_consumer()

    async def all_done() -> bool:
        return await processed(ctx) == len(events)

    await eventually(all_done, what=f"{compression} batches applied")
    assert await _state(ctx, cid) == ((1, 1, 1), 110)


async def test_an_open_transactions_events_wait_for_its_commit(
    ctx: Context, cset: ConsumerSettings, start_consumer
) -> None:
    [in_txn, outside] = await make_customers(ctx, 2)
    producer = _producer(cset, **{"transactional.id": f"orders-{uuid.uuid4().hex[:8]}"})
    await asyncio.to_thread(producer.init_transactions, 30)
    producer.begin_transaction()
    _produce(producer, cset, events_for(in_txn), partition=0)
    await asyncio.to_thread(_flush, producer)
    # After the transaction's records, on another partition, outside any transaction.
    plain = _producer(cset)
    _produce(plain, cset, _order(events_for(outside), "ord-2"), partition=1)
    await asyncio.to_thread(_flush, plain)
    await start_consumer()

    async def outside_done() -> bool:
        return await _state(ctx, outside) == ((1, 1, 1), 110)

    # The fetches that brought these brought partition 0's records too, had the
    # consumer read uncommitted ones.
    await eventually(outside_done, what="the events outside the transaction applied")
    await asyncio.sleep(1.0)
    assert await _state(ctx, in_txn) == (None, None)

    await asyncio.to_thread(producer.commit_transaction, 30)

    async def committed_done() -> bool:
        return await _state(ctx, in_txn) == ((1, 1, 1), 110)

    await eventually(committed_done, what="the committed transaction's events applied")
    assert await processed(ctx) == 6


async def test_a_batch_the_consumer_cannot_read_is_retried_and_nothing_is_skipped(
    ctx: Context, cset: ConsumerSettings, start_consumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cids = await make_customers(ctx, PARTITIONS)
    # Readable batches on every partition but one, an unreadable one there: what
    # a failed fetch had read of the others must not be lost with it.
    plain = _producer(cset)
    for partition, cid in enumerate(cids[1:], start=1):
        for order in ("a", "b"):
            _produce(plain, cset, _order(events_for(cid), f"{order}-{cid}"), partition=partition)
    await asyncio.to_thread(_flush, plain)
    snappy = _producer(cset, **{"compression.type": "snappy"})
    _produce(snappy, cset, _order(events_for(cids[0]), "ord-0"), partition=0)
    await asyncio.to_thread(_flush, snappy)

    # As in an image built without aiokafka's codec libraries (cramjam).
    monkeypatch.setattr(aiokafka.codec, "cramjam", None)
    running = await start_consumer()

    async def waiting_on_the_codec() -> bool:
        return "snappy" in running.runner.health.problem

    await eventually(waiting_on_the_codec, what="the consumer to report the unreadable batch")
    await asyncio.sleep(1.0)  # a few retries
    assert not running.task.done(), "the consumer stopped on a batch it could not read"
    assert "snappy" in str(running.runner.health.report()["problem"])

    monkeypatch.undo()  # the libraries are back

    async def all_done() -> bool:
        return await processed(ctx) == 3 + 6 * (PARTITIONS - 1)

    await eventually(all_done, what="every event applied once the batch can be read")
    assert await _state(ctx, cids[0]) == ((1, 1, 1), 110)
    for cid in cids[1:]:
        assert await _state(ctx, cid) == ((2, 2, 2), 220)
