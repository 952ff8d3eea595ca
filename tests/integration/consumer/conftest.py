"""Consumer fixtures: topics of the test's own on the shared broker, customers, a running consumer.

Every test gets a unique topic prefix, consumer group and dead-letter topic,
so tests never read each other's events on the one session broker.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer

from customer_consumer import demo_traffic, kafka
from customer_consumer import settings as consumer_settings
from customer_consumer.health import Health
from customer_consumer.runner import Runner
from customer_core.context import Context
from customer_core.domain.order_events import OrderEvent

PARTITIONS = 4


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "KAFKA_TOPIC_PREFIX": f"t{tag}.",
        "KAFKA_GROUP_ID": f"g{tag}",
        "KAFKA_DLQ_TOPIC": f"t{tag}.dlq",
        "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
        "CONSUMER_POLL_MS": "100",
        "CONSUMER_HEALTH_PORT": "0",
        "CONSUMER_RETRY_MAX_SECONDS": "1",
        # A killed member's partitions move after this (the default waits 10 s).
        "CONSUMER_SESSION_TIMEOUT_MS": "3000",
    }


@pytest.fixture
async def cenv(env: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    """Variables for a consumer on this test's database and topics (topics created)."""
    merged = {**env, **names}
    config = consumer_settings.load(merged)
    topics = [*config.topics, config.core.kafka.dlq_topic]
    await kafka.ensure_topics(config.core.kafka, topics, PARTITIONS)
    return merged


@pytest.fixture
def cset(cenv: dict[str, str]) -> consumer_settings.ConsumerSettings:
    return consumer_settings.load(cenv)


async def make_customers(ctx: Context, n: int, *, pooled: bool = False) -> list[uuid.UUID]:
    """`n` customers, one family each (or one pooled family for all)."""
    ids = [uuid.uuid4() for _ in range(n)]
    async with ctx.pool.acquire() as conn:
        family = uuid.uuid4()
        if pooled:
            await conn.execute(
                "INSERT INTO families (id, display_name, wallet_pooled) VALUES ($1, 'F', true)",
                family,
            )
        for cid in ids:
            fid = family if pooled else uuid.uuid4()
            if not pooled:
                await conn.execute("INSERT INTO families (id, display_name) VALUES ($1, 'F')", fid)
            await conn.execute(
                "INSERT INTO customers (id, family_id, username, display_name) "
                "VALUES ($1, $2, $3, 'C')",
                cid,
                fid,
                f"u{cid.hex[:12]}",
            )
    return ids


@pytest.fixture
async def producer(cset: consumer_settings.ConsumerSettings) -> AsyncIterator[AIOKafkaProducer]:
    p = kafka.producer(cset.core.kafka)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def send(
    producer: AIOKafkaProducer,
    cset: consumer_settings.ConsumerSettings,
    events: Sequence[OrderEvent],
) -> None:
    outs = [demo_traffic.outgoing(e) for e in events]
    await demo_traffic.publish(producer, cset.topic_prefix, outs, random.Random(1))


async def send_raw(producer: AIOKafkaProducer, topic: str, value: bytes, key: bytes = b"k") -> None:
    await (await producer.send(topic, value, key=key))


@dataclass
class Running:
    runner: Runner
    task: asyncio.Task[None]
    stop: asyncio.Event
    ctx: Context

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 60)
        await self.ctx.aclose()


@pytest.fixture
async def start_consumer(
    cset: consumer_settings.ConsumerSettings,
) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Start in-process consumers (each with its own Context); all stopped at the end."""
    started: list[Running] = []

    async def start(config: consumer_settings.ConsumerSettings | None = None) -> Running:
        config = config or cset
        ctx = await Context.create(config.core)
        stop = asyncio.Event()
        runner = Runner(config, ctx, Health(config.stuck_seconds))
        running = Running(runner, asyncio.create_task(runner.run(stop)), stop, ctx)
        started.append(running)
        return running

    yield start
    for running in started:
        if not running.task.done():
            await running.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 60, what: str = "condition"
) -> None:
    """Poll `check` until true; machines are shared and slow, so be generous."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
