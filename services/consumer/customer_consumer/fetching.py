"""Fetching batches from the broker, going back after a fetch that could not be read, lag.

A fetch can fail on a batch the client cannot read: compressed with a codec
whose library is missing, or corrupt (CRC). By then aiokafka has moved the
positions of the other partitions it drained for that fetch past their
records, which are lost with the exception
(tests/integration/consumer/test_librdkafka_producer.py shows it). So after
such a failure every assigned partition goes back to its next unapplied
offset before anything is fetched again: the batch is read again, never
skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from customer_consumer import metrics
from customer_consumer.records import Fetched, decode_records
from customer_core.domain.order_events import Topic

# Records decoded between two yields to the event loop.
DECODE_SLICE = 100


async def fetch(
    consumer: AIOKafkaConsumer, topics: Mapping[str, Topic], *, max_records: int, timeout_ms: int
) -> Fetched:
    """The next batch, decoded in slices so that other tasks (the batch in the
    database, the notifier) are not held up for a whole batch's decoding."""
    fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
    records = [r for batch in fetched.values() for r in batch]
    out = Fetched(records, [], [])
    for start in range(0, len(records), DECODE_SLICE):
        part = decode_records(records[start : start + DECODE_SLICE], topics)
        out.good += part.good
        out.bad += part.bad
        await asyncio.sleep(0)
    return out


async def rewind(consumer: AIOKafkaConsumer, applied: Mapping[TopicPartition, int]) -> None:
    """Every assigned partition back to the offset after its last applied record
    (`applied`), else to its committed offset, else to its beginning."""
    for tp in consumer.assignment():
        offset = applied.get(tp)
        if offset is None:
            offset = await consumer.committed(tp)
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)


async def measure_lag(consumer: AIOKafkaConsumer) -> int:
    """Records behind the high-water mark, over the assigned partitions (and per
    partition in the lag gauge)."""
    total = 0
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        lag = max(high - await consumer.position(tp), 0)
        metrics.LAG.labels(tp.topic, str(tp.partition)).set(lag)
        total += lag
    return total
