"""The poll loop: fetch a batch, apply it in one transaction, dead-letter what is bad, commit.

Offsets are committed only after the database commit (and after the batch's
dead letters were acknowledged by the broker), so a crash anywhere replays
the batch and the inbox turns the replay into no-ops. While the database (or
the broker, for dead letters) is unavailable, the loop stops fetching and
retries the same batch with capped exponential backoff, so nothing is lost or
skipped; so is a fetch the client cannot read (fetching.py). On SIGTERM it
finishes the batch in hand, commits, and leaves the group. The rebalance
listener waits for the batch in hand and commits what is done before
partitions move to another member.

Throughput: while a batch is in the database, the next one is fetched and
decoded (one batch ahead at most; records of partitions revoked meanwhile are
dropped, and a batch fetched but not applied is simply read again by whoever
owns its partitions next), and offsets are committed in the background, one
commit at a time, each covering whatever is done by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, ProducerClosed

from customer_consumer import fetching, kafka, metrics
from customer_consumer.health import Health
from customer_consumer.rebalance import Rebalance, count_outcomes
from customer_consumer.records import Fetched, rejected_letters
from customer_consumer.settings import ConsumerSettings
from customer_consumer.tracing import continue_producer_traces, trace_of, tracer
from customer_core.context import Context
from customer_core.context.kafka import client_options
from customer_core.errors import Unavailable
from customer_core.usecases.events import Applying
from customer_core.usecases.notifier import Notifier

log = logging.getLogger(__name__)
# Attempts at a batch that fails with an unexpected exception (not an outage, not a
# refusal by the database) before the event at fault is bisected out.
APPLY_ATTEMPTS = 3


class Abandoned(Exception):
    """Shutdown arrived while a batch was waiting for a dependency; it was not committed."""


class Runner:
    def __init__(self, settings: ConsumerSettings, ctx: Context, health: Health) -> None:
        self.settings = settings
        self.ctx = ctx
        self.health = health
        self.topics = settings.topics
        # Held while a batch is applied, so a rebalance waits for it.
        self.lock = asyncio.Lock()
        self.done: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self._commit_lock = asyncio.Lock()
        self._committing: asyncio.Task[None] | None = None
        self._commit_wanted = False
        self.notifier = Notifier(ctx)
        # When the first records arrived (after joining the group): the benchmark's clock.
        self.first_fetch_at: float | None = None

    def _new_consumer(self) -> AIOKafkaConsumer:
        core = self.settings.core.kafka
        return AIOKafkaConsumer(
            **client_options(core),
            group_id=core.group_id,
            client_id=f"customer-consumer-{socket.gethostname()}-{os.getpid()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A producer's aborted transaction is not an order: its events must
            # never count (read_uncommitted would apply them, exactly once).
            isolation_level="read_committed",
            max_poll_records=self.settings.max_batch,
            fetch_max_wait_ms=min(self.settings.poll_ms, 500),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=max(self.settings.session_timeout_ms // 3, 100),
        )

    async def run(self, stop: asyncio.Event) -> None:
        core = self.settings.core.kafka
        await kafka.ensure_topics(core, list(self.topics), self.settings.partitions)
        self.consumer = consumer = self._new_consumer()
        consumer.subscribe(list(self.topics), listener=Rebalance(self))
        self.producer = kafka.producer(core)
        await self.producer.start()
        self.notifier.start()
        ahead: asyncio.Task[Fetched] | None = None
        try:
            await consumer.start()
            self.health.started = True
            log.info(
                "consumer started", extra={"topics": list(self.topics), "group": core.group_id}
            )
            while not stop.is_set():
                self.health.loop_turned()
                fetched = await self._next(ahead, stop)
                ahead = None
                if fetched is None:
                    break
                assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
                fetched = fetched.keep(assigned)
                if fetched.records:
                    # Fetch and decode the next batch while this one is in the
                    # database: the CPU work overlaps the waiting.
                    ahead = asyncio.create_task(self._fetch())
                    try:
                        await self.handle(fetched, stop)
                    except Abandoned:
                        break
                # Also on idle turns: a commit that failed is retried, and nothing
                # done waits for the next batch to be committed.
                self._commit_soon()
                self.health.progressed(lag=await fetching.measure_lag(consumer))
        finally:
            self.health.started = False
            if ahead is not None:
                ahead.cancel()  # fetched, not applied: the next owner reads it again
                with contextlib.suppress(asyncio.CancelledError, KafkaError):
                    await ahead
            await self.commit()
            await consumer.stop()  # leaves the group: its partitions move at once
            await self.producer.stop()
            await self.notifier.close()
            log.info("consumer stopped")

    async def _fetch(self) -> Fetched:
        assert self.consumer is not None
        most, wait = self.settings.max_batch, self.settings.poll_ms
        fetched = await fetching.fetch(
            self.consumer, self.topics, max_records=most, timeout_ms=wait
        )
        if fetched.records and self.first_fetch_at is None:
            self.first_fetch_at = time.perf_counter()
        return fetched

    async def _next(
        self, ahead: asyncio.Task[Fetched] | None, stop: asyncio.Event
    ) -> Fetched | None:
        """The next batch (None: shutdown came first). A fetch the client cannot
        read is retried with backoff, from what was applied (fetching.rewind)."""
        assert self.consumer is not None
        attempt, lost = 0, False
        while True:
            try:
                if lost:
                    await fetching.rewind(self.consumer, self.done)
                    lost = False
                return await (ahead or self._fetch())
            except KafkaError as exc:
                ahead, lost = None, True
                metrics.RETRIES.labels("kafka").inc()
                problem = f"kafka: cannot read the fetched records: {type(exc).__name__}: {exc}"
                self.health.waiting(problem)
                delay = _backoff(self.settings.retry_max_seconds, attempt)
                log.error(
                    "fetch failed; reading it again", extra={"error": problem, "retry_in": delay}
                )
                if await _stopped_within(stop, delay):
                    return None
                attempt += 1

    async def handle(self, fetched: Fetched, stop: asyncio.Event) -> None:
        """Apply one fetched batch until it succeeds (or shutdown abandons it)."""
        started = time.perf_counter()
        records, good, bad = fetched.records, fetched.good, fetched.bad
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        # Traces only when they are exported: reading headers and making spans
        # for every record costs CPU that nobody would see.
        traced = bool(self.settings.core.otlp_endpoint)
        parent, links = trace_of(records) if traced else (None, [])
        applying = Applying(good)
        attempt = failures = 0
        while True:
            try:
                with tracer.start_as_current_span(
                    "consume order events",
                    context=parent,
                    links=links,
                    attributes={"messaging.batch.message_count": len(records)},
                ) as batch_span:
                    async with self.lock:
                        # After APPLY_ATTEMPTS failures of an unexpected kind, the
                        # event at fault is bisected out and dead-lettered.
                        await applying.apply(self.ctx, isolate_any=failures >= APPLY_ATTEMPTS)
                        result = applying.committed
                        dead = bad + rejected_letters(result.rejected, fetched)
                        await kafka.send_dead_letters(
                            self.producer, self.settings.core.kafka.dlq_topic, dead
                        )
                        self.done.update(offsets)
                continue_producer_traces(links, batch_span, started)
                break
            except Exception as exc:
                if isinstance(exc, Unavailable):
                    dependency = "database"
                elif isinstance(exc, KafkaError):
                    dependency = "kafka"
                    if isinstance(exc, ProducerClosed):
                        await self._renew_producer()
                else:
                    dependency = "apply"
                    failures += 1
                    log.exception("applying a batch failed unexpectedly")
                metrics.RETRIES.labels(dependency).inc()
                self.health.waiting(f"{dependency}: {exc}")
                delay = _backoff(self.settings.retry_max_seconds, attempt)
                log.warning(
                    "batch not done; retrying",
                    extra={
                        "dependency": dependency,
                        "error": str(exc),
                        "retry_in": delay,
                        "committed": len(good) - len(applying.pending),
                    },
                )
                if await _stopped_within(stop, delay):
                    raise Abandoned from exc
                attempt += 1
        # What the commits changed, however many attempts the batch took: a retry
        # applies only what had not committed, so it finds no duplicates of its own.
        await self.notifier.put(result.notices, result.activities)
        count_outcomes(result, dead)
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _renew_producer(self) -> None:
        """A closed producer refuses every send: the batch would retry forever."""
        log.warning("the dead-letter producer was closed; starting a new one")
        self.producer = kafka.producer(self.settings.core.kafka)
        await self.producer.start()

    def _commit_soon(self) -> None:
        """Commit what is done in the background, while the next batch is applied
        (its offsets follow in the next commit). One commit task at a time; a batch
        done while it runs is committed by that task's next round, not left for
        whenever another batch arrives."""
        self._commit_wanted = True
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_while_wanted())

    async def _commit_while_wanted(self) -> None:
        while self._commit_wanted:
            self._commit_wanted = False
            await self.commit()

    async def commit(self, only: Sequence[TopicPartition] | None = None) -> None:
        """Commit the offsets applied but not yet committed (for `only` these partitions)."""
        async with self._commit_lock:
            await self._commit(only)

    async def _commit(self, only: Sequence[TopicPartition] | None) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        pending = {
            tp: off
            for tp, off in self.done.items()
            if tp in assigned and self.committed.get(tp) != off and (only is None or tp in only)
        }
        if not pending:
            return
        try:
            await consumer.commit(pending)
        except KafkaError as exc:
            # The group moved on (a rebalance): the new owner re-reads from the last
            # committed offset, and the inbox makes those events no-ops.
            log.warning("offset commit failed", extra={"error": str(exc)})
            return
        self.committed.update(pending)
        metrics.LAST_COMMIT.set(time.time())


def _backoff(most: float, attempt: int) -> float:
    """Seconds before retry `attempt`: capped exponential backoff, jittered."""
    return min(most, 0.2 * 2.0**attempt) * random.uniform(0.5, 1.0)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`; True when shutdown came first."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
