"""The consumer group's rebalances, and a batch's outcomes in the metrics (runner.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from customer_consumer import metrics
from customer_consumer.records import DeadLetter, field_label
from customer_core.usecases.events import BatchResult

log = logging.getLogger(__name__)


class Holder(Protocol):
    """What the rebalance listener uses of the runner."""

    lock: asyncio.Lock
    done: dict[TopicPartition, int]
    committed: dict[TopicPartition, int]

    async def commit(self, only: Sequence[TopicPartition] | None = None) -> None: ...


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions leaving this member: the batch in hand finishes (30 s at most),
    what is done of them is committed, and their lag gauges go."""

    def __init__(self, runner: Holder) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            async with asyncio.timeout(30):
                async with self.runner.lock:
                    pass  # the batch in hand is done (or failed and will be replayed)
        except TimeoutError:
            log.warning("rebalance: batch still in hand after 30s; its events will replay")
        await self.runner.commit(only=list(revoked))
        for tp in revoked:
            self.runner.done.pop(tp, None)
            self.runner.committed.pop(tp, None)
            with contextlib.suppress(KeyError):
                metrics.LAG.remove(tp.topic, str(tp.partition))
        log.info("partitions revoked", extra={"partitions": len(revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            extra={"partitions": sorted(f"{tp.topic}/{tp.partition}" for tp in assigned)},
        )


def count_outcomes(result: BatchResult, dead: Sequence[DeadLetter]) -> None:
    """A finished batch's events in the metrics, by topic and outcome."""
    for outcome, items in (("applied", result.applied), ("duplicate", result.duplicates)):
        by_topic: dict[str, int] = {}
        for i in items:
            by_topic[i.topic] = by_topic.get(i.topic, 0) + 1
        for topic, n in by_topic.items():
            metrics.EVENTS.labels(topic, outcome).inc(n)
    for d in dead:
        metrics.EVENTS.labels(d.source.topic, "dead_lettered").inc()
        metrics.DEAD_LETTERS.labels(d.source.topic, field_label(d.field)).inc()
